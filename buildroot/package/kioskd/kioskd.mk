################################################################################
#
# kioskd
#
################################################################################

# Built from the checkout that holds this BR2_EXTERNAL tree (its parent
# directory), not from a release archive. The local site method copies the
# checkout with rsync and, unlike a download, does not vendor the Go
# modules, while Buildroot's Go builds offline with -mod=vendor: run
# `make vendor` in the checkout first (`make buildroot` does), and
# `make kioskd-rebuild` here to pick up changed sources.
KIOSKD_VERSION = custom
KIOSKD_SITE = $(realpath $(BR2_EXTERNAL_KIOSKD_PATH)/..)
KIOSKD_SITE_METHOD = local
# Not copied into the build directory: binaries and the state of
# `make run`, and this tree with any Buildroot output kept under the
# checkout (the Makefile's default is _buildroot/).
KIOSKD_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude=/dist --exclude=/var --exclude=/_buildroot --exclude=/buildroot

# kioskd itself is Apache-2.0 (LICENSE at the top of the checkout). The
# vendored modules are linked into the same binary, so their licences
# follow and legal-info collects their files too.
KIOSKD_LICENSE = Apache-2.0, \
	MIT (BurntSushi/toml, bbolt), \
	Apache-2.0 (go-jose, periph.io, clockwork), \
	BSD-3-Clause (google/uuid, tarm/serial, golang.org/x/sys, rsc.io/qr, go-jose/json)
KIOSKD_LICENSE_FILES = LICENSE $(patsubst $(KIOSKD_SITE)/%,%,$(sort $(wildcard \
	$(foreach d,* */* */*/* */*/*/* */*/*/*/*,\
		$(KIOSKD_SITE)/vendor/$(d)/LICENSE $(KIOSKD_SITE)/vendor/$(d)/COPYING))))

KIOSKD_GOMOD = github.com/kioskd/kioskd
KIOSKD_BUILD_TARGETS = cmd/kioskd
KIOSKD_GO_ENV = CGO_ENABLED=0

# The version stamp of `make build`: the checkout's Makefile passes both
# (make buildroot); otherwise git is asked here, once.
ifeq ($(BR2_PACKAGE_KIOSKD),y)
ifeq ($(origin KIOSKD_BUILD_VERSION),undefined)
KIOSKD_BUILD_VERSION := $(shell git -C '$(KIOSKD_SITE)' describe --tags --always --dirty 2>/dev/null || echo custom)
endif
ifeq ($(origin KIOSKD_BUILD_COMMIT),undefined)
KIOSKD_BUILD_COMMIT := $(shell git -C '$(KIOSKD_SITE)' rev-parse --short HEAD 2>/dev/null || echo unknown)
endif
endif
KIOSKD_LDFLAGS = \
	-s -w \
	-X main.version=$(KIOSKD_BUILD_VERSION) \
	-X main.commit=$(KIOSKD_BUILD_COMMIT)

KIOSKD_BOARD = $(call qstrip,$(BR2_PACKAGE_KIOSKD_BOARD))
ifeq ($(BR_BUILDING)$(BR2_PACKAGE_KIOSKD),yy)
ifeq ($(KIOSKD_BOARD),)
$(error kioskd: BR2_PACKAGE_KIOSKD_BOARD is empty: set it to rpi3, rpi4, rpi5, generic or sim)
endif
endif

# go.mod says go 1.25.0 and Buildroot's Go runs with GOTOOLCHAIN=local.
define KIOSKD_CHECK_GO_VERSION
	@v=`$(GO_BIN) env GOVERSION`; \
	case "$$v" in \
	go1.2[5-9]*|go1.[3-9][0-9]*|go[2-9]*) ;; \
	*) echo "kioskd: needs Go >= 1.25 (go.mod); this Buildroot's host Go is $$v: use Buildroot 2025.11 or later" >&2; \
	   exit 1 ;; \
	esac
endef
KIOSKD_PRE_BUILD_HOOKS += KIOSKD_CHECK_GO_VERSION

ifeq ($(KIOSKD_SITE_METHOD),local)
define KIOSKD_CHECK_VENDOR
	@if [ ! -f $(@D)/vendor/modules.txt ]; then \
		echo "kioskd: $(KIOSKD_SITE) has no vendor/ directory." >&2; \
		echo "kioskd: Buildroot builds Go offline from vendored modules, and the local" >&2; \
		echo "kioskd: site method does not vendor: run 'make vendor' in $(KIOSKD_SITE)," >&2; \
		echo "kioskd: then 'make kioskd-rebuild' here ('make buildroot' there does both)." >&2; \
		exit 1; \
	fi
endef
KIOSKD_PRE_BUILD_HOOKS += KIOSKD_CHECK_VENDOR
endif

# The image's default configuration (package/kioskd/kioskd.toml) with the
# board kind filled in. /data/kioskd.toml, when present, is used instead
# (board/kiosk/rootfs-overlay/usr/sbin/kioskd-run).
define KIOSKD_INSTALL_CONFIG
	$(INSTALL) -D -m 0644 $(KIOSKD_PKGDIR)/kioskd.toml \
		$(TARGET_DIR)/etc/kioskd/kioskd.toml
	$(SED) 's/@KIOSKD_BOARD@/$(KIOSKD_BOARD)/' $(TARGET_DIR)/etc/kioskd/kioskd.toml
	! grep -n '@[A-Z_]*@' $(TARGET_DIR)/etc/kioskd/kioskd.toml
endef
KIOSKD_POST_INSTALL_TARGET_HOOKS += KIOSKD_INSTALL_CONFIG

# kioskd feeds /dev/watchdog and drives the GPIOs through the character
# device; the board's watchdog driver is in the board's kernel fragment.
define KIOSKD_LINUX_CONFIG_FIXUPS
	$(call KCONFIG_ENABLE_OPT,CONFIG_WATCHDOG)
	$(call KCONFIG_ENABLE_OPT,CONFIG_GPIO_CDEV)
endef

$(eval $(golang-package))
