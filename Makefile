# Thin wrapper over CMake: deps, build, check, demo. See README.md.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build check unit format format-check bench bench-hostd demo clean

all: build

deps:
	@scripts/deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

# Every test: deps and build included. CI runs this with -Werror.
check: deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS) $(if $(CI),-DVSCALE_WERROR=ON)
	cmake --build $(BUILD) -j$(JOBS)
	$(MAKE) --no-print-directory format-check
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# The suite but the real-VM tests, built with AddressSanitizer + UndefinedBehaviorSanitizer
# (leaks included: the daemons exit non-zero on a leak and the integration tests check that).
check-asan: deps
	cmake -S . -B $(BUILD)-asan -DVSCALE_SANITIZE=ON -DVSCALE_WERROR=ON
	cmake --build $(BUILD)-asan -j$(JOBS)
	cd $(BUILD)-asan && ctest --output-on-failure -j$(JOBS) -LE e2e

unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@bad=$$(for f in $$(git ls-files '*.c' '*.h'); do \
		clang-format --dry-run -Werror $$f >/dev/null 2>&1 || echo $$f; done); \
	if [ -n "$$bad" ]; then echo "not formatted (run make format): $$bad"; exit 1; fi

bench: build
	$(BUILD)/bench/bench_sample --threads 1000 --guestd $(BUILD)/guest-agent/vscale-guestd

# hostd with 1,000 and 10,000 simulated guests against the raw cost of receiving their bytes
bench-hostd: build
	bench/fanin.sh $(BUILD)

# A real VM scaled live: boots the e2e guest under libvirt, runs vscale-hostd on it and a load
# pattern, and shows it (tests/e2e/demo.sh; ~3 min). Root: it starts libvirtd and a VM.
demo:
	@if [ "$$(id -u)" -ne 0 ]; then \
		echo "make demo: run it as root (sudo make demo): it installs packages, starts libvirtd" \
			"and boots a VM on qemu:///system" >&2; exit 1; fi
	@scripts/deps.sh
	@echo "make demo: building into $(BUILD)/ (log: $(BUILD)/demo-build.log)"
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS) >$(BUILD)/demo-build.log 2>&1 || \
		{ tail -n 30 $(BUILD)/demo-build.log; echo "make demo: the build failed" >&2; exit 1; }
	bash tests/e2e/demo.sh $(BUILD)

clean:
	rm -rf $(BUILD)
