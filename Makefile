# Thin wrapper over CMake: deps, build, check, demo. See README.md.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build check unit format format-check bench bench-hostd demo deb clean
.PHONY: check-asan check-fuzz fuzz fuzz-seeds

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
	$(MAKE) --no-print-directory check-asan
	@echo "make check: the e2e scenarios again, hostd built with ASan + UBSan"
	cd $(BUILD) && VSCALE_E2E_HOSTD=$(abspath $(BUILD)-asan)/host-agent/vscale-hostd \
		ctest --output-on-failure -L e2e -R scenarios
	$(MAKE) --no-print-directory check-fuzz

# The suite but the real-VM tests, built with AddressSanitizer + UndefinedBehaviorSanitizer
# (leaks included: the daemons exit non-zero on a leak and the integration tests check that).
# Not the packaging tests: packages are built from the plain build, and LeakSanitizer cannot
# stop the world inside the units' seccomp sandbox.
check-asan: deps
	cmake -S . -B $(BUILD)-asan -DVSCALE_SANITIZE=ON -DVSCALE_WERROR=ON
	cmake --build $(BUILD)-asan -j$(JOBS)
	cd $(BUILD)-asan && ctest --output-on-failure -j$(JOBS) -LE 'e2e|valgrind|packaging'

# libFuzzer targets (tests/fuzz/, clang, ASan + UBSan) in their own build dir. check-fuzz runs
# each for FUZZ_SMOKE seconds from the committed seeds (ctest -L fuzz); fuzz runs each for
# FUZZ_TIME seconds with a corpus that grows in $(BUILD)-fuzz/fuzz/<target>/ (failing inputs in
# .../crashes/); fuzz-seeds rewrites the binary seeds after a wire change.
FUZZ_SMOKE ?= 20
FUZZ_TIME ?= 600
FUZZ_CMAKE = cmake -S . -B $(BUILD)-fuzz -DCMAKE_C_COMPILER=clang -DVSCALE_FUZZ=ON \
	-DVSCALE_FUZZ_SECONDS=$(FUZZ_SMOKE)

check-fuzz: deps
	$(FUZZ_CMAKE)
	cmake --build $(BUILD)-fuzz -j$(JOBS) --target fuzz-all
	cd $(BUILD)-fuzz && ctest --output-on-failure -j$(JOBS) -L fuzz

fuzz: deps
	$(FUZZ_CMAKE)
	cmake --build $(BUILD)-fuzz -j$(JOBS) --target fuzz-all
	FUZZ_TIME=$(FUZZ_TIME) sh $(BUILD)-fuzz/fuzz-all.sh

fuzz-seeds: deps
	$(FUZZ_CMAKE)
	cmake --build $(BUILD)-fuzz -j$(JOBS) --target fuzz-mkseeds
	$(BUILD)-fuzz/tests/fuzz/fuzz-mkseeds tests/fuzz/corpus

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
	$(BUILD)/bench/bench_sample --threads 5000 --guestd $(BUILD)/guest-agent/vscale-guestd

# hostd with 1,000 and 10,000 simulated guests against the raw cost of receiving their bytes
bench-hostd: build
	bench/fanin.sh $(BUILD)

# On the e2e VM (root: boots it on qemu:///system; ~5 min): load step -> vCPU online in the
# guest with hostd closing the loop, 10 runs (bench/reaction.sh), and memory grow and shrink
# speed of virtio-mem, DIMM and balloon in one run (bench/memspeed.sh)
.PHONY: bench-vm
bench-vm: build
	@if [ "$$(id -u)" -ne 0 ]; then \
		echo "make bench-vm: run it as root: it starts libvirtd and boots a VM" >&2; exit 1; fi
	bash bench/reaction.sh $(BUILD)
	bash bench/memspeed.sh $(BUILD)

# The policy simulator on every shipped trace: the built-in default policy against the baselines,
# a table per trace and a summary, plots in $(BUILD)/sim/ (vscale-sim, README "Tuning a policy")
.PHONY: sim
sim: build
	$(BUILD)/sim/vscale-sim --plot $(BUILD)/sim sim/traces/synthetic/*.csv sim/traces/bitbrains/*.csv

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

# vscale-host and vscale-guest .debs into $(BUILD)/deb/ (packaging/deb/build.sh; needs dpkg-dev)
deb: $(BUILD)/CMakeCache.txt
	@scripts/deps.sh
	packaging/deb/build.sh $(BUILD) $(BUILD)/deb

clean:
	rm -rf $(BUILD)
