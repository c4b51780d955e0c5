/* Per-sample verdicts: one guest sample against a policy's thresholds, with no memory of the
 * samples before it (runs.c keeps that). Each condition is yes, no, or absent when the sample
 * lacks the figures it needs, so a guest that omits a figure neither starts nor breaks a run.
 * Guest figures are hostile: nothing here trusts a count or a percentage to be sane. */
#include "verdict.h"

/* A thread this busy (% of one CPU) needs a vCPU of its own: scale-down never goes below the
 * number of such threads. */
#define HOT_THREAD_PCT 50.0
/* a thread this busy, with the rest of the VM idle, is single-thread saturation */
#define LONE_THREAD_PCT 90.0

bool verdict_avail_pct(const struct sample *s, double *ret_pct)
{
	if (!SAMPLE_HAS(s, SF_MEM_TOTAL) || !SAMPLE_HAS(s, SF_MEM_AVAIL) || !s->mem_total_kib)
		return false;
	*ret_pct = (double)s->mem_avail_kib * 100.0 / (double)s->mem_total_kib;
	return true;
}

uint64_t verdict_mem_used_kib(const struct sample *s)
{
	return s->mem_total_kib > s->mem_avail_kib ? s->mem_total_kib - s->mem_avail_kib : 0;
}

bool verdict_psi_cpu_high(const struct policy *p, const struct sample *s)
{
	return SAMPLE_HAS(s, SF_PSI_CPU_SOME) && s->psi_cpu_some_avg10 >= p->cpu_psi_up_pct;
}

bool verdict_psi_mem_high(const struct policy *p, const struct sample *s)
{
	return SAMPLE_HAS(s, SF_PSI_MEM_SOME) && s->psi_mem_some_avg10 >= p->mem_psi_up_pct;
}

static bool has_online(const struct sample *s)
{
	return SAMPLE_HAS(s, SF_CPU_ONLINE) && s->cpus_online;
}

/* Either figure over its threshold makes a sample high; absent when it has neither. */
enum verdict verdict_cpu_high(const struct policy *p, const struct sample *s)
{
	bool busy = SAMPLE_HAS(s, SF_CPU_BUSY);

	if (!busy && !SAMPLE_HAS(s, SF_PSI_CPU_SOME))
		return VERDICT_ABSENT;
	/* CPU pressure is a 10 s average and lingers after a burst: it counts only while the VM is
	 * busier than cpu-down now (bench/reaction.sh saw an idle guest get two more vCPUs on the
	 * pressure its finished load had left) */
	bool psi = verdict_psi_cpu_high(p, s) && (!busy || s->cpu_busy_pct > p->cpu_down_pct);

	return (busy && s->cpu_busy_pct >= p->cpu_up_pct) || psi ? VERDICT_YES : VERDICT_NO;
}

/* Needs the online count too: a shrink must know how many CPUs the busy % is of. */
enum verdict verdict_cpu_low(const struct policy *p, const struct sample *s)
{
	if (!SAMPLE_HAS(s, SF_CPU_BUSY) || !has_online(s))
		return VERDICT_ABSENT;
	return s->cpu_busy_pct <= p->cpu_down_pct && !verdict_psi_cpu_high(p, s) ? VERDICT_YES
	                                                                         : VERDICT_NO;
}

enum verdict verdict_mem_low(const struct policy *p, const struct sample *s)
{
	double pct;
	bool have = verdict_avail_pct(s, &pct);

	if (!have && !SAMPLE_HAS(s, SF_PSI_MEM_SOME))
		return VERDICT_ABSENT;
	return (have && pct <= p->mem_up_avail_pct) || verdict_psi_mem_high(p, s) ? VERDICT_YES
	                                                                          : VERDICT_NO;
}

/* Plenty available and, as for CPU, no pressure: under reclaim stalls the figure lies. */
enum verdict verdict_mem_high(const struct policy *p, const struct sample *s)
{
	double pct;

	if (!verdict_avail_pct(s, &pct))
		return VERDICT_ABSENT;
	return pct >= p->mem_down_avail_pct && !verdict_psi_mem_high(p, s) ? VERDICT_YES
	                                                                   : VERDICT_NO;
}

const struct sample_thread *verdict_top_thread(const struct sample *s)
{
	return SAMPLE_HAS(s, SF_THREADS) && s->nthreads ? &s->threads[0] : NULL;
}

/* The guest flags a thread that saturates one CPU while the rest idles, by its own threshold,
 * after its streak (several samples); the host also sees it in any one sample from the hottest
 * thread, so a cpu-up-for shorter than the guest's streak cannot outrun it. The host checks the
 * rest by its own threshold: what the other threads use, spread over the other vCPUs, stays
 * below cpu-up. Tasks waiting for a CPU (pressure) mean more vCPUs would help after all. Without
 * busy % or online count the guest's word stands. */
bool verdict_one_thread(const struct policy *p, const struct sample *s)
{
	const struct sample_thread *top = verdict_top_thread(s);
	bool flagged = SAMPLE_HAS(s, SF_SATURATED) && s->saturated;
	double rest_cores, ncpu;

	if (verdict_psi_cpu_high(p, s))
		return false;
	if (!SAMPLE_HAS(s, SF_CPU_BUSY) || !has_online(s))
		return flagged;
	if (!flagged && (!top || top->cpu_pct < LONE_THREAD_PCT))
		return false;
	ncpu = s->cpus_online;
	rest_cores = s->cpu_busy_pct / 100.0 * ncpu - (top ? top->cpu_pct / 100.0 : 1.0);
	return rest_cores * 100.0 < p->cpu_up_pct * (ncpu > 1 ? ncpu - 1 : 1);
}

uint32_t verdict_hot_threads(const struct sample *s)
{
	uint32_t hot = 0;

	for (uint32_t i = 0; SAMPLE_HAS(s, SF_THREADS) && i < s->nthreads && i < SAMPLE_MAX_THREADS;
	     i++)
		hot += s->threads[i].cpu_pct >= HOT_THREAD_PCT;
	return hot;
}
