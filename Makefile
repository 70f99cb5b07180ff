# kioskd build. Every binary is static (CGO_ENABLED=0); only `make test`
# uses cgo, for the race detector on the build machine.

GO       ?= go
PKG      := ./...
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
BUILD    := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)'
FUZZTIME ?= 10s
RACE     := $(if $(filter amd64,$(shell $(GO) env GOARCH)),-race,)

.PHONY: all build run test lint bench bench-all fuzz sim cross test-arm test-armv7 test-arm64 vm-test vm-powercut vm-ota vm-ota-cuts clean

# The boards: the Pi 3 image is armv7 (GOARM=7), the Pi 4 image arm64.
ARMV7    := GOOS=linux GOARCH=arm GOARM=7
ARM64    := GOOS=linux GOARCH=arm64

# `make test-arm`: the unit tests of the packages below, cross-compiled and
# run under Debian's qemu-user (qemu-arm, qemu-aarch64) through
# scripts/qemu-test.sh, which picks the emulator from the ELF header and
# emulates the boards' CPUs (cortex-a7, cortex-a72). No race detector: it
# does not exist on arm. The full tests, not -short: about 110 s for armv7
# and 90 s for arm64 on a two-core machine, most of it the payment
# simulator's 3000 seeds (kept: it checks the payment core on a 32-bit
# word too). A bug that only a 32-bit word shows (an overflowing
# constant, a 64-bit atomic off its 8-byte boundary) fails here.
#
# Two tests are skipped by default (ARM_SKIP). The tests that exec python3 (MobyPay
# cross-check) and node (KPOS interop) work under emulation: qemu-user hands
# execve to the host kernel, which runs the host's python3 and node natively,
# and they check the ARM build of our code against those references. Pseudo-
# terminal tests work too (plain syscalls). What cannot work without
# binfmt_misc is a test that re-executes its own binary (os.Args[0]); that is
# why cmd/ is not in the list. Put test names that must not run under qemu in
# ARM_SKIP (a go test -skip regexp), with the reason beside it.
ARM_PKGS      ?= ./protocol/... ./payment/... ./device/... ./board/... ./machine/... \
                 ./config/... ./control/... ./logsink/... ./internal/... ./fleet/...
# TestFsyncsPerPayment re-executes its own binary under strace, and
# TestPaymentAllocBudget as its POS simulator.
ARM_SKIP      ?= ^(TestFsyncsPerPayment|TestPaymentAllocBudget)$$
ARM_TESTFLAGS ?= -count=1 -timeout 20m
QEMU_EXEC     := $(CURDIR)/scripts/qemu-test.sh
ARM_TEST       = $(GO) test -exec '$(QEMU_EXEC)' $(ARM_TESTFLAGS) $(if $(ARM_SKIP),-skip '$(ARM_SKIP)') $(ARM_PKGS)

all: build

build:
	@mkdir -p dist
	$(BUILD) -o dist/kioskd ./cmd/kioskd

# Starts kioskd on the simulated board with the embedded default config.
run: build
	./dist/kioskd run

test: lint
	$(GO) test $(RACE) -count=1 $(PKG)
	sh scripts/test/run.sh

# staticcheck is pinned and fetched through the module proxy by `go run`,
# so it is not a dependency of the module.
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

# go mod tidy -diff prints what tidy would change and fails, without
# touching go.mod or go.sum: an import added or dropped without tidying
# fails here, not in someone else's checkout.
#
# shellcheck (Debian's shellcheck) reads every shell script of scripts/,
# buildroot/ and .ci/: each *.sh and each file whose #! line names a shell
# (guest/init, rcS, the overlay's sbin scripts have no .sh), in the
# dialect of its #! line. All but .ci/run (bash) are POSIX sh: BusyBox ash
# on the boards and the virtual board, dash here. The etc/default/
# fragments that init scripts source have no #! line: checked as sh.
# A finding that is deliberate gets `# shellcheck disable=SCxxxx # why`.
lint:
	@fmt=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$fmt" ]; then echo "gofmt needed:"; echo "$$fmt"; exit 1; fi
	$(GO) mod tidy -diff
	$(GO) vet $(PKG)
	$(STATICCHECK) $(PKG)
	@command -v shellcheck >/dev/null || { echo "lint: shellcheck not found (apt-get install shellcheck)" >&2; exit 1; }
	@sh=; frag=; \
	  for f in $$(git ls-files scripts buildroot .ci 2>/dev/null || find scripts buildroot .ci -type f); do \
	    case $$f in \
	    */etc/default/*) frag="$$frag $$f" ;; \
	    *.sh) sh="$$sh $$f" ;; \
	    *) if head -n 1 "$$f" | grep -q '^#!.*sh'; then sh="$$sh $$f"; fi ;; \
	    esac; \
	  done; \
	  echo "shellcheck$$sh"; echo "shellcheck -s sh$$frag"; \
	  shellcheck $$sh && { [ -z "$$frag" ] || shellcheck -s sh $$frag; }

# `make bench`: the goals' benchmarks, each beside its floor from the same
# run, as one table (scripts/benchtable; BENCH_COUNT runs each: medians,
# but the codec's best of them, interleaved with their floors, and the
# relay latency's run with the least host steal).
# `make bench-all`: every benchmark, raw.
BENCH_COUNT ?= 3
bench:
	$(GO) run ./scripts/benchtable -count $(BENCH_COUNT)

bench-all:
	$(GO) test -run '^$$' -bench . -benchmem $(PKG)

# A short bounded run of every fuzz target (FUZZTIME each).
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
	  dir=$$(dirname $$f); \
	  for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "fuzz $$dir $$t"; \
	    $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $$dir; \
	  done; \
	done

# The payment core's deterministic simulation (payment/sim_test.go) over
# more seeds than `make test` runs, without the race detector; it prints
# seeds/s and what the runs covered. A failing seed prints its minimal
# schedule and how to replay it. SIMFLAGS passes more, e.g.
#   make sim SEEDS=200000 SIMFLAGS='-sim.first=1000000 -sim.steps=120'
#   make sim SIMFLAGS='-sim.enable=check:deadline'   (a check held back for a known defect)
SEEDS    ?= 100000
SIMFLAGS ?=
sim:
	$(GO) test -count=1 -timeout 0 -run '^TestSim$$' -v ./payment/ -sim.seeds=$(SEEDS) $(SIMFLAGS)

# Static, stripped, version-stamped binaries for the two boards. The check
# reads the ELF program headers (no PT_INTERP, no PT_DYNAMIC); with
# qemu-user installed, each binary also prints its version on its own CPU.
cross:
	@mkdir -p dist
	$(ARMV7) $(BUILD) -o dist/kioskd-linux-armv7 ./cmd/kioskd
	$(ARM64) $(BUILD) -o dist/kioskd-linux-arm64 ./cmd/kioskd
	@scripts/elf-static.sh dist/kioskd-linux-armv7 dist/kioskd-linux-arm64
	@for f in dist/kioskd-linux-armv7 dist/kioskd-linux-arm64; do \
	  if command -v qemu-arm >/dev/null && command -v qemu-aarch64 >/dev/null; then \
	    scripts/qemu-test.sh $$f version || exit 1; \
	  fi; \
	done
	@ls -l dist/kioskd-linux-armv7 dist/kioskd-linux-arm64 | awk '{printf "%9d bytes  %s\n", $$5, $$9}'

# `make cross-goos`: the code builds for every GOOS, as periph's does,
# though the firmware runs on Linux only. Linux-only parts (watchdog,
# GPIO character device, ptys, and serial ports where tarm/serial needs
# cgo) sit behind build tags with stubs that return errors.ErrUnsupported,
# so a developer's Mac or Windows machine (and gopls there) can build and
# vet the tree; this keeps it so. vet type-checks the tests too. Nothing
# is run or kept.
# A target of its own, not part of `make cross`: that one makes the
# boards' binaries and is a prerequisite of vm-test, which needs none of
# this.
CROSS_GOOS ?= darwin/amd64 windows/amd64 freebsd/amd64

.PHONY: cross-goos
cross-goos:
	@set -e; for p in $(CROSS_GOOS); do \
	  echo "build and vet $$p"; \
	  GOOS=$${p%/*} GOARCH=$${p#*/} CGO_ENABLED=0 $(GO) build $(PKG); \
	  GOOS=$${p%/*} GOARCH=$${p#*/} CGO_ENABLED=0 $(GO) vet $(PKG); \
	done

# vet with the target's word size first: it type-checks every package and
# test (cmd/ included) for 32-bit int, which the tests alone would not.
test-arm: test-armv7 test-arm64

test-armv7:
	$(ARMV7) CGO_ENABLED=0 $(GO) vet $(PKG)
	start=$$(date +%s); $(ARMV7) CGO_ENABLED=0 $(ARM_TEST); rc=$$?; \
	  echo "test-armv7: $$(( $$(date +%s) - start )) s"; exit $$rc

test-arm64:
	$(ARM64) CGO_ENABLED=0 $(GO) vet $(PKG)
	start=$$(date +%s); $(ARM64) CGO_ENABLED=0 $(ARM_TEST); rc=$$?; \
	  echo "test-arm64: $$(( $$(date +%s) - start )) s"; exit $$rc

# The virtual board (scripts/vm): the cross-built binaries booted on
# Debian's arm64 and armhf kernels under qemu-system (TCG), with the real
# GPIO, watchdog, UART and disk drivers, and real power cuts. Debian's
# kernels and busybox-static are fetched once into /var/cache/kioskd-vm
# (KIOSKD_VM_CACHE). VM_ARCH=arm64 or armv7 boots one board only.
#   make vm-test               every virtual board test, 30 power cuts per board
#                              (TestVMCompactCut: at most 10, each a boot)
#   make vm-powercut N=300     the power-cut trial alone, N cuts per board
#   make vm-ota                the A/B update tests alone (scripts/vm/ota_test.go,
#                              issue 15): arm64, about 11 minutes on two cores
#                              (alone: Good 1m40s, Crashes 1m25s, DuringPayment
#                              2m); OTA_ARCH=arm64,armv7 both (armv7 passed the
#                              five before DuringPayment, 9 min); host packages:
#                              rauc libubootenv-tool fdisk qemu-user
#                              squashfs-tools openssl, besides vm-test's
VM_ARCH  ?= arm64,armv7
OTA_ARCH ?= arm64
N        ?= 30
VM_TEST   = cd scripts/vm && $(GO) test -count=1 -timeout 60m -v -skip '^TestVMOTA' . -args -vm -vm.arch=$(VM_ARCH)

vm-test: cross
	$(VM_TEST) -vm.cuts=30

vm-ota: cross
	cd scripts/vm && $(GO) test -count=1 -timeout 30m -v -run '^TestVMOTA' . -args -vm -vm.arch=$(OTA_ARCH)

# `make vm-ota-cuts N=6`: TestVMOTAPowerCut alone, N power cuts during the
# slot write (the first a second in, the rest at random in its first two
# seconds), on OTA_ARCH.
vm-ota-cuts: cross
	cd scripts/vm && $(GO) test -count=1 -timeout 0 -v -run '^TestVMOTAPowerCut$$' . -args -vm -vm.arch=$(OTA_ARCH) -vm.otacuts=$(N)

vm-powercut: cross
	cd scripts/vm && $(GO) test -count=1 -timeout 0 -v -run '^TestVMPowerCut$$' . -args -vm -vm.arch=$(VM_ARCH) -vm.cuts=$(N)

clean:
	rm -rf dist var

# The SD-card image (buildroot/README.md). Buildroot builds Go offline from
# vendored modules, and its local site method (the package builds this
# checkout) does not vendor: `make vendor` writes vendor/ (git-ignored; once
# it exists, go commands here use it too: run it again after changing
# go.mod, or remove vendor/).
#   make buildroot BR=/path/to/buildroot [BOARD=rpi3|rpi4_64]
#       loads buildroot/configs/kiosk_$(BOARD)_defconfig into BUILDROOT_OUT
#       with BR2_EXTERNAL=buildroot, rebuilds kioskd from this checkout and
#       builds everything else that changed: BUILDROOT_OUT/images/sdcard.img.
#       BR is a Buildroot source tree, 2025.11.3 or later (host Go >= 1.25).
#   make buildroot-check [BR=/path/to/buildroot]
#       buildroot/check.sh: offline checks of the tree; with BR, also loads
#       each defconfig into a scratch directory (no download).
BR            ?=
BOARD         ?= rpi4_64
BR_DEFCONFIG   = kiosk_$(BOARD)_defconfig
BUILDROOT_OUT ?= $(CURDIR)/_buildroot/$(BOARD)
# Buildroot's make gets none of this make's flags or command-line variables.
BR_MAKE        = unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES; \
                 $(MAKE) -C '$(BR)' O='$(BUILDROOT_OUT)' BR2_EXTERNAL='$(CURDIR)/buildroot'

.PHONY: vendor buildroot buildroot-check

vendor:
	$(GO) mod vendor

buildroot:
	@if [ -z '$(BR)' ] || [ ! -f '$(BR)/package/pkg-golang.mk' ]; then \
	  echo 'usage: make buildroot BR=/path/to/buildroot [BOARD=rpi3|rpi4_64]: BR is a Buildroot source tree' >&2; exit 2; fi
	@if [ ! -f 'buildroot/configs/$(BR_DEFCONFIG)' ]; then \
	  echo 'no buildroot/configs/$(BR_DEFCONFIG): BOARD is rpi3 or rpi4_64' >&2; exit 2; fi
	$(GO) mod vendor
	$(BR_MAKE) $(BR_DEFCONFIG)
	$(BR_MAKE) KIOSKD_BUILD_VERSION='$(VERSION)' KIOSKD_BUILD_COMMIT='$(COMMIT)' kioskd-rebuild all
	@echo "image: $(BUILDROOT_OUT)/images/sdcard.img"

buildroot-check:
	sh buildroot/check.sh $(if $(BR),-b '$(BR)')
