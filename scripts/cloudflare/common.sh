# Shared by scripts/cloudflare/*: project paths, the function list, and the offline toolchain
# (pinned tools installed once, then found without any download at build time).
# Sourced, not run.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
FUNCTIONS=(gateway chat agent knowledge search code thinking research admin)
# The mode functions and the gateway, built for size (Cargo.toml's `small` profile), admin with
# `release`: the same split as scripts/spin/build.
SMALL_FUNCTIONS=(gateway chat agent knowledge search code thinking research)
# The cargo profile a function is built with.
profile_of() {
    if [[ " ${SMALL_FUNCTIONS[*]} " == *" $1 "* ]]; then
        echo small
    else
        echo release
    fi
}

# Pinned here; wasm-bindgen-cli's version is read from Cargo.lock instead, because it must
# match the `wasm-bindgen` library exactly.
WORKER_BUILD_VERSION=0.8.7

# wrangler keeps its logs, dev registry and metrics consent under XDG_CONFIG_HOME: keep them in
# the project (git-ignored) rather than in the user's home, and never phone home.
export XDG_CONFIG_HOME="$ROOT/.config"
export WRANGLER_SEND_METRICS=false
# Miniflare would otherwise fetch a `Request.cf` sample from the internet on every start.
export CLOUDFLARE_CF_FETCH_ENABLED=false

log() { printf '[cloudflare] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

wasm_bindgen_version() {
    awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' \
        "$ROOT/Cargo.lock"
}

# Installs what the build needs, idempotently; fast when everything is already there.
ensure_toolchain() {
    command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) first"
    command -v node >/dev/null || die "node not found: install Node.js 20.3 or later"

    if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
        log "adding the wasm32-unknown-unknown target"
        rustup target add wasm32-unknown-unknown
    fi

    [ -f "$ROOT/Cargo.lock" ] || (cd "$ROOT" && cargo generate-lockfile)
    local bindgen_version cargo_bin
    bindgen_version="$(wasm_bindgen_version)"
    [ -n "$bindgen_version" ] || die "no wasm-bindgen in Cargo.lock"
    cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
    if [ "$("$cargo_bin/wasm-bindgen" --version 2>/dev/null)" != "wasm-bindgen $bindgen_version" ]; then
        log "installing wasm-bindgen-cli $bindgen_version"
        # --locked first; its lockfile can name a crate version the registry has since yanked,
        # so fall back to a fresh resolution of the same CLI version.
        cargo install wasm-bindgen-cli --version "$bindgen_version" --locked --force ||
            cargo install wasm-bindgen-cli --version "$bindgen_version" --force
    fi
    if [ "$("$cargo_bin/worker-build" --version 2>/dev/null)" != "$WORKER_BUILD_VERSION" ]; then
        log "installing worker-build $WORKER_BUILD_VERSION"
        cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked --force ||
            cargo install worker-build --version "$WORKER_BUILD_VERSION" --force
    fi

    "$ROOT/scripts/npm-packages"

    # worker-build would download these at build time; point it at the pinned local ones.
    export WASM_BINDGEN_BIN="$cargo_bin/wasm-bindgen"
    export WORKER_BUILD_BIN="$cargo_bin/worker-build"
    export ESBUILD_BIN="$ROOT/node_modules/.bin/esbuild"
    export WASM_OPT_BIN="$ROOT/node_modules/.bin/wasm-opt"
    export PATH="$ROOT/node_modules/.bin:$PATH"
}

# The config variables the functions read (one list for every runner: config-vars).
CONFIG_VARS=()
while read -r name; do
    case "$name" in "" | "#"*) ;; *) CONFIG_VARS+=("$name") ;; esac
done <"$ROOT/scripts/cloudflare/config-vars"
