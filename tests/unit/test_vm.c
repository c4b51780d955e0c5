/* Per-VM session rules (host-agent/vm.c): samples need a Hello and a growing sequence number,
 * and the interval a guest claims is capped by what the host saw, so a guest cannot meet a
 * policy window with one sample or flap its way to a decision per sample. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vm.h"

static const struct guestlink_ops no_ops;

static struct vm *new_vm(void)
{
	struct virt_dom d = {.name = "t", .uuid = "u", .vcpus_cur = 1, .vcpus_max = 4};
	struct hello h = {.protocol_version = 1, .session_nonce = 1};
	struct vm *vm;

	d.mem.cur_kib = d.mem.base_kib = d.mem.max_kib = 1 << 20;
	vm = vm_new(EV_DEFAULT, &d, &no_ops);
	assert_non_null(vm);
	policy_default(&vm->policy);
	assert_int_equal(vm_take_hello(vm, &h), 0);
	return vm;
}

static struct sample sample(uint64_t seq, uint32_t interval_ms, float busy, bool saturated)
{
	struct sample s = {.seq = seq,
	                   .interval_ms = interval_ms,
	                   .cpus_online = 1,
	                   .cpus_present = 1,
	                   .cpu_busy_pct = busy,
	                   .saturated = saturated};

	s.has = 1u << SF_CPU_ONLINE | 1u << SF_CPU_PRESENT | 1u << SF_CPU_BUSY |
	        1u << SF_SATURATED | 1u << SF_THREADS;
	if (interval_ms)
		s.has |= 1u << SF_INTERVAL;
	return s;
}

static void take(struct vm *vm, uint64_t seq, uint32_t interval_ms, uint64_t now_ms)
{
	struct sample s = sample(seq, interval_ms, 10, false);

	assert_int_equal(vm_take_sample(vm, &s, now_ms), 0);
}

static void test_session_rules(void **state)
{
	struct hello h = {.protocol_version = 1, .session_nonce = 2};
	struct vm *vm = new_vm();
	struct sample s = sample(5, 1000, 10, false);

	assert_int_equal(vm_take_sample(vm, &s, 1000), 0);
	assert_int_equal(vm_take_sample(vm, &s, 2000), -EPROTO); /* replayed */
	s.seq = 4;
	assert_int_equal(vm_take_sample(vm, &s, 3000), -EPROTO); /* backwards */
	assert_int_equal(vm->n.samples, 1);
	h.protocol_version = 2;
	assert_int_equal(vm_take_hello(vm, &h), -EPROTO);
	h.protocol_version = 1;
	assert_int_equal(vm_take_hello(vm, &h), 0); /* a new session counts from 1 again */
	s.seq = 1;
	assert_int_equal(vm_take_sample(vm, &s, 4000), 0);
	vm_free(vm);
}

static void test_interval_capped(void **state)
{
	struct vm *vm = new_vm();

	/* the session's first sample: the host saw nothing before it */
	take(vm, 1, 60000, 10000);
	assert_int_equal(vm->st.interval_ms, 1);
	/* 200 ms later, claiming 60 s: a quarter over what the host saw */
	take(vm, 2, 60000, 10200);
	assert_int_equal(vm->st.interval_ms, 250);
	/* an honest guest a little early keeps its claim */
	take(vm, 3, 1000, 11000);
	assert_int_equal(vm->st.interval_ms, 1000);
	/* no claim after a long gap: the policy's default stands */
	take(vm, 4, 0, 14000);
	assert_int_equal(vm->st.interval_ms, 1000);
	assert_false(SAMPLE_HAS(&vm->st.newest, SF_INTERVAL));
	/* no claim right after the previous sample: capped like a claim of the default */
	take(vm, 5, 0, 14100);
	assert_int_equal(vm->st.interval_ms, 125);
	/* a burst (a backlog after a reconnect) covers nothing the host saw */
	take(vm, 6, 1000, 14100);
	assert_int_equal(vm->st.interval_ms, 1);
	vm_free(vm);
}

/* Saturated, calm, saturated, ... 1 ms apart, each claiming 60 s: with the claim taken on trust
 * every saturated sample met the 10 s window and was a decision (and a decision-log line). */
static void test_flapping_meets_no_window(void **state)
{
	struct host_view host = {.vcpus_free = 100, .mem_free_kib = 1 << 30};
	struct vm *vm = new_vm();
	int saturated = 0;

	for (uint64_t i = 1; i <= 200; i++) {
		struct sample s = sample(i, 60000, i % 2 ? 100 : 50, i % 2);
		struct vm_view view;
		struct decision d;

		if (i % 2) {
			s.nthreads = 1;
			s.threads[0] =
			        (struct sample_thread){.tid = 1, .comm = "x", .cpu_pct = 100};
		}
		assert_int_equal(vm_take_sample(vm, &s, 5000 + i), 0);
		vm_view(vm, &view);
		policy_decide(&vm->policy, &view, &host, 5000 + i, &d);
		saturated += d.reason == REASON_SATURATED;
	}
	assert_int_equal(saturated, 0);
	vm_free(vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_session_rules),
	        cmocka_unit_test(test_interval_capped),
	        cmocka_unit_test(test_flapping_meets_no_window),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
