/* Helpers every simulated controller shares: the memory grid and the domain bounds. */
#include "ctl.h"

void ctl_free(struct ctl *c)
{
	if (c && c->ops && c->ops->free)
		c->ops->free(c);
}

uint64_t ctl_mem_up(const struct sim_env *env, uint64_t kib)
{
	uint64_t g = env->granule_kib ? env->granule_kib : 1;

	return (kib + g - 1) / g * g;
}

uint64_t ctl_mem_down(const struct sim_env *env, uint64_t kib)
{
	uint64_t g = env->granule_kib ? env->granule_kib : 1;

	return kib / g * g;
}

uint32_t ctl_clamp_vcpus(const struct sim_env *env, uint64_t v)
{
	if (v < env->vcpus_min)
		return env->vcpus_min;
	if (v > env->vcpus_max)
		return env->vcpus_max;
	return (uint32_t)v;
}

uint64_t ctl_clamp_mem(const struct sim_env *env, uint64_t kib)
{
	if (kib < env->mem_min_kib)
		return env->mem_min_kib;
	if (kib > env->mem_max_kib)
		return env->mem_max_kib;
	return kib;
}
