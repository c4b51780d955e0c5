/* Host headroom arithmetic, kept apart from I/O so it can be tested as a table and reasoned
 * about: every grant the policy makes is checked against it. */
#include "headroom.h"

#include <math.h>

void headroom_compute(const struct headroom_input *in, struct host_view *ret)
{
	int64_t cpus = (int64_t)in->host_cpus - (int64_t)in->reserve_cpus;
	int64_t mem;

	if (cpus < 0)
		cpus = 0;
	ret->vcpus_free = (int64_t)floor((double)cpus * in->cpu_overcommit) -
	                  (int64_t)in->vcpus_allocated - (int64_t)in->vcpus_in_flight;
	if (in->capacity_model)
		mem = (int64_t)in->host_mem_total_kib - (int64_t)in->mem_allocated_kib;
	else
		mem = (int64_t)in->host_mem_free_kib;
	ret->mem_free_kib = mem - (int64_t)in->reserve_mem_kib - (int64_t)in->mem_in_flight_kib;
}
