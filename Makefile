# Thin wrapper around CMake presets. `make check` and `make demo` are the two commands README gives.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build release check check-dev check-asan demo bench format format-check fuzz clean

all: build

deps:
	@scripts/deps.sh

build: deps
	cmake --preset dev >/dev/null
	cmake --build --preset dev -j $(JOBS)

release: deps
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS)

check: deps format-check check-dev check-asan

check-dev:
	cmake --preset dev -DRUMOR_WERROR=ON >/dev/null
	cmake --build --preset dev -j $(JOBS)
	ctest --preset dev -j $(JOBS)

check-asan:
	cmake --preset asan-ubsan -DRUMOR_WERROR=ON >/dev/null
	cmake --build --preset asan-ubsan -j $(JOBS)
	ctest --preset asan-ubsan -j $(JOBS) -LE integ-slow

demo: release
	scripts/demo.sh

fuzz: deps
	cmake --preset fuzz >/dev/null
	cmake --build --preset fuzz -j $(JOBS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h') && echo "format: ok"

clean:
	rm -rf build
