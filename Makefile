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

.PHONY: all build run test lint bench fuzz cross clean

all: build

build:
	@mkdir -p dist
	$(BUILD) -o dist/kioskd ./cmd/kioskd

# Starts kioskd on the simulated board with the embedded default config.
run: build
	./dist/kioskd run

test: lint
	$(GO) test $(RACE) -count=1 $(PKG)

lint:
	@fmt=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$fmt" ]; then echo "gofmt needed:"; echo "$$fmt"; exit 1; fi
	$(GO) vet $(PKG)

bench:
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

cross:
	@mkdir -p dist
	GOOS=linux GOARCH=arm GOARM=7 $(BUILD) -o dist/kioskd-linux-armv7 ./cmd/kioskd
	GOOS=linux GOARCH=arm64 $(BUILD) -o dist/kioskd-linux-arm64 ./cmd/kioskd
	@ls -l dist/kioskd-linux-armv7 dist/kioskd-linux-arm64 | awk '{print $$5, $$9}'

clean:
	rm -rf dist var
