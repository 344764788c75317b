#!/usr/bin/env bash
# Builds every Rust snippet of README.md the way a reader uses it: pasted
# as the whole `src/main.rs` of a fresh cargo project whose dependencies are
# the README's own `[dependencies]` snippet.
#
# - Every ```rust block (and every block without a language, which rustdoc
#   also runs as Rust) becomes a binary `src/bin/snippet_N.rs` of one
#   throwaway project, target/readme-snippets/project/, built in ONE cargo
#   build with its own target directory (target/readme-snippets/target/).
# - The project's [dependencies] are the README's ```toml block that starts
#   with `[dependencies]`, with `borrowstore` pointed at this checkout; this
#   workspace's Cargo.lock is copied in, so the versions are the tested ones.
# - Warnings are errors (unused imports and variables included), and a
#   rustdoc-hidden line (`# ...`) fails: it would not be in what is pasted.
#
# On failure it names the README line of every snippet that does not build,
# and compiler messages point into README.md.
#
# Usage: scripts/readme-snippets.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readme="$root/README.md"
work="$root/target/readme-snippets"
project="$work/project"
export CARGO_TARGET_DIR="$work/target"

rm -rf "$project"
mkdir -p "$project/src/bin"

# Split README.md: snippets into src/bin/, their first lines into `starts`,
# the dependencies block into `deps.toml`, misuse into `problems`.
awk -v bin="$project/src/bin" -v out="$project" '
    function fail(msg) { print "README.md:" NR ": " msg > (out "/problems") }
    !inside && /^```/ {
        info = substr($0, 4)
        sub(/^[ \t]+/, "", info)
        split(info, words, /[ ,]/)
        lang = words[1]
        inside = 1
        first = NR + 1
        if (lang == "rust" || lang == "") {
            n++
            file = bin "/snippet_" n ".rs"
            printf "" > file
            print n, first > (out "/starts")
            kind = "rust"
        } else if (lang == "toml") {
            kind = "toml"
            toml = ""
        } else {
            kind = "other"
        }
        next
    }
    inside && /^```[ \t]*$/ {
        if (kind == "rust") close(file)
        if (kind == "toml" && toml ~ /^[ \t\n]*\[dependencies\]/) {
            deps++
            if (deps > 1) fail("a second [dependencies] snippet; keep one")
            printf "%s", toml > (out "/deps.toml")
        }
        inside = 0
        next
    }
    inside && kind == "rust" {
        if ($0 ~ /^[ \t]*#( |$)/) fail("a hidden doctest line (\"# ...\"): it is not in what a reader pastes")
        print > file
    }
    inside && kind == "toml" { toml = toml $0 "\n" }
    END {
        if (inside) fail("a code block is not closed")
        if (!deps) print "README.md: no ```toml block starting with [dependencies]" > (out "/problems")
        if (!n) print "README.md: no Rust snippet" > (out "/problems")
    }
' "$readme"

if [ -s "$project/problems" ]; then
    cat "$project/problems" >&2
    exit 1
fi

# The README's dependencies, with borrowstore taken from this checkout.
escaped_root=$(printf '%s' "$root" | sed 's/[\\&|]/\\&/g; s/"/\\"/g')
if ! grep -Eq '^borrowstore[[:space:]]*=' "$project/deps.toml"; then
    echo "README.md: the [dependencies] snippet does not name borrowstore" >&2
    exit 1
fi
sed -E \
    -e "s|^borrowstore[[:space:]]*=[[:space:]]*\"[^\"]*\"[[:space:]]*\$|borrowstore = { path = \"$escaped_root\" }|" \
    -e "/^borrowstore[[:space:]]*=[[:space:]]*\\{/s|version[[:space:]]*=[[:space:]]*\"[^\"]*\"|path = \"$escaped_root\"|" \
    "$project/deps.toml" > "$project/deps.local.toml"
if ! grep -Eq '^borrowstore[[:space:]]*=.*path = ' "$project/deps.local.toml"; then
    echo "README.md: cannot point the borrowstore dependency at the checkout:" >&2
    grep -E '^borrowstore' "$project/deps.toml" >&2
    exit 1
fi

{
    cat <<'EOF'
[package]
name = "readme-snippets"
version = "0.0.0"
edition = "2024"
publish = false

# A project of its own, not a member of the borrowstore workspace.
[workspace]

[lints.rust]
warnings = "deny"

EOF
    cat "$project/deps.local.toml"
} > "$project/Cargo.toml"
cp "$root/Cargo.lock" "$project/Cargo.lock"

count=$(wc -l < "$project/starts")
echo "readme-snippets: building $count snippets of README.md in $project"
status=0
(cd "$project" && cargo build --bins --keep-going --color never) > "$project/build.log" 2>&1 || status=$?

# Compiler messages, pointed at README.md lines.
awk -v starts="$project/starts" '
    BEGIN { while ((getline line < starts) > 0) { split(line, f, " "); start[f[1]] = f[2] } }
    {
        out = ""
        rest = $0
        while (match(rest, /src\/bin\/snippet_[0-9]+\.rs:[0-9]+/)) {
            hit = substr(rest, RSTART, RLENGTH)
            split(substr(hit, 17), parts, /\.rs:/)
            out = out substr(rest, 1, RSTART - 1) "README.md:" (start[parts[1]] + parts[2] - 1)
            rest = substr(rest, RSTART + RLENGTH)
        }
        print out rest
    }
' "$project/build.log" > "$project/build.readme.log"

if [ "$status" -ne 0 ]; then
    cat "$project/build.readme.log" >&2
    echo >&2
    failed=0
    while read -r n first; do
        if grep -Eq "src/bin/snippet_${n}\\.rs|bin \"snippet_${n}\"" "$project/build.log"; then
            echo "README.md:$first: this snippet does not build as a program of its own" >&2
            failed=$((failed + 1))
        fi
    done < "$project/starts"
    if [ "$failed" -eq 0 ]; then
        echo "readme-snippets: the build failed (see above)" >&2
    fi
    exit 1
fi
echo "readme-snippets: all $count snippets build"
