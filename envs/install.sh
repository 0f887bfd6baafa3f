#!/usr/bin/env bash
# One-command install: pinned dependencies (envs/requirements.lock), then this project in
# editable mode so scripts/ can import workflow_lib. Runs in the active Python (3.11);
# create and activate a virtual environment first if you want one.
# torch is pinned to the 2.13.0 CPU wheel; pip finds it through its find-links setting
# (or install torch==2.13.0 from your cluster's wheel mirror before running this).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
python="${PYTHON:-python}"

"$python" -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else "Python >= 3.11 required, found " + sys.version.split()[0])'
"$python" -m pip install --disable-pip-version-check -q -r "$here/requirements.lock"
"$python" -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e "$root"

# NLTK data for the TextAttack augmentation (workflow_lib/learning/augment.py), with no download, installed into
# this environment's own folder "$prefix/nltk_data" (prefix = sys.prefix of the python above; one of
# the folders NLTK searches), so every checkout used with this environment (a second clone, a worktree)
# finds it. There go the English stop word list from envs/nltk_data (committed; import textattack needs
# it) and WordNet: the files of Debian's wordnet-base (and wordnet-sense-index: nltk reads index.sense
# too), copied (nltk's loader refuses symlinks), plus the lexnames file nltk needs and Debian lacks.
# NLTK also refuses data that other accounts can write to, so the folder is made private to its owner
# (chmod -R go-w) whatever the umask. Safe to re-run; without root it only says what to run for WordNet.
prefix="$("$python" -c 'import sys; print(sys.prefix)')"
nltk_dst="$prefix/nltk_data"
if ! mkdir -p "$nltk_dst/corpora" 2>/dev/null || [ ! -w "$nltk_dst/corpora" ]; then
    echo "ERROR: cannot write $nltk_dst (the NLTK data of this Python's environment, $prefix)." >&2
    echo "  Create and activate a virtual environment and run again:" >&2
    echo "  python3.11 -m venv .venv && . .venv/bin/activate && bash envs/install.sh" >&2
    exit 1
fi
rm -rf "$nltk_dst/corpora/stopwords"
cp -R "$here/nltk_data/corpora/stopwords" "$nltk_dst/corpora/"
# an earlier install copied WordNet into the checkout (workflow_lib/resources/nltk_data): not read any more
rm -rf "$root/workflow_lib/resources/nltk_data/corpora/wordnet"
rmdir -p "$root/workflow_lib/resources/nltk_data/corpora" 2>/dev/null || true
wn_src=/usr/share/wordnet
wn_dst="$nltk_dst/corpora/wordnet"
wn_pkgs="wordnet-base wordnet-sense-index"
wn_ok() { [ -f "$wn_src/data.noun" ] && [ -f "$wn_src/index.sense" ]; }
if ! wn_ok && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -q --no-install-recommends $wn_pkgs >/dev/null \
        || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $wn_pkgs >/dev/null; } \
        || echo "WARNING: apt-get install $wn_pkgs failed" >&2
fi
if wn_ok; then
    mkdir -p "$wn_dst"
    for f in "$wn_src"/*; do if [ -f "$f" ]; then cp -fL "$f" "$wn_dst/"; fi; done
    names=(adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body
           noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location
           noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process
           noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change
           verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation
           verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl)
    : >"$wn_dst/lexnames.tmp"
    for i in "${!names[@]}"; do
        n="${names[$i]}"; case "$n" in noun.*) c=1;; verb.*) c=2;; adj.*) c=3;; adv.*) c=4;; esac
        printf '%02d\t%s\t%d\n' "$i" "$n" "$c" >>"$wn_dst/lexnames.tmp"
    done
    mv -f "$wn_dst/lexnames.tmp" "$wn_dst/lexnames"
else
    echo "WordNet is missing: the augmentation recipes synonym_swap and synonym_insert need it. As root run" >&2
    echo "  apt-get install -y --no-install-recommends $wn_pkgs && bash envs/install.sh" >&2
fi
chmod -R go-w "$nltk_dst"
echo "NLTK data: $nltk_dst"
"$python" -c 'import workflow_lib, torch, transformers, optuna, mlflow, snakemake; print("installed: torch", torch.__version__, "| transformers", transformers.__version__, "| optuna", optuna.__version__, "| mlflow", mlflow.__version__)'
