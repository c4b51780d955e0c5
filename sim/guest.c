/* The simulated guest's samples: figures vscale-guestd would read from /proc in a VM with a
 * given demand and allocation (the model is described in guest.h). */
#include "guest.h"

#include <math.h>
#include <string.h>

#define PSI_TAU_MS 10000.0 /* avg10 */

void guest_init(struct guest *g, uint32_t interval_ms)
{
	memset(g, 0, sizeof(*g));
	g->interval_ms = interval_ms;
	g->keep = exp(-(double)interval_ms / PSI_TAU_MS);
}

/* Share (%) of the time the excess keeps a task waiting, as modelled in guest.h. */
static double excess_pct(double demand, double have)
{
	if (have <= 0)
		return demand > 0 ? 100 : 0;
	if (demand <= have)
		return 0;
	return fmin(100, 100.0 * (demand - have) / have);
}

static double avg10(const struct guest *g, double avg, double now_pct)
{
	return avg * g->keep + now_pct * (1 - g->keep);
}

void guest_sample(struct guest *g, double cpu_cores, double mem_kib, uint32_t vcpus,
                  uint64_t mem_kib_alloc, uint64_t now_ms, struct sample *ret)
{
	struct sample s = {0};
	double used = fmin(cpu_cores, (double)vcpus);

	g->psi_cpu_some = avg10(g, g->psi_cpu_some, excess_pct(cpu_cores, vcpus));
	g->psi_mem_some = avg10(g, g->psi_mem_some, excess_pct(mem_kib, (double)mem_kib_alloc));

	s.seq = ++g->seq;
	s.mono_ms = now_ms;
	s.interval_ms = g->interval_ms;
	SAMPLE_SET(&s, SF_INTERVAL);
	s.cpus_online = vcpus;
	s.cpus_present = vcpus;
	SAMPLE_SET(&s, SF_CPU_ONLINE);
	SAMPLE_SET(&s, SF_CPU_PRESENT);
	s.cpu_busy_pct = vcpus ? (float)(100.0 * used / vcpus) : 0;
	SAMPLE_SET(&s, SF_CPU_BUSY);
	s.psi_cpu_some_avg10 = (float)g->psi_cpu_some;
	SAMPLE_SET(&s, SF_PSI_CPU_SOME);
	s.mem_total_kib = mem_kib_alloc;
	s.mem_avail_kib = mem_kib >= (double)mem_kib_alloc ? 0 : mem_kib_alloc - (uint64_t)mem_kib;
	SAMPLE_SET(&s, SF_MEM_TOTAL);
	SAMPLE_SET(&s, SF_MEM_AVAIL);
	s.psi_mem_some_avg10 = (float)g->psi_mem_some;
	SAMPLE_SET(&s, SF_PSI_MEM_SOME);
	s.saturated = false;
	SAMPLE_SET(&s, SF_SATURATED);
	*ret = s;
}
