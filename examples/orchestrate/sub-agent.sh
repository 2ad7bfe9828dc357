#!/bin/sh
# The scripted sub-agent orchestrate.mjs runs in each bottle (bottle_run
# ["sh", "-s"] with this file on stdin, so any image with sh and git will do).
# A real orchestrator would start an agent CLI here; this script does what
# such an agent does with a repository, deterministically: clone through the
# bottle's git gate, change a file, commit, push its own branch, and say what
# it did on its last line.
#
#   AGENT_CLONE_URL  the clone URL bottle_start returned: git://<gate>/<upstream>
#   AGENT_BRANCH     the branch to push, agent/<slug> (the profile's push_refs allow agent/*)
#   AGENT_TASK       one line of text: what to write and the commit message
#
# The agent holds no git credential: the gate checks the push against the
# profile's policy and forwards it upstream with the key only the gate holds.
set -eu
: "${AGENT_CLONE_URL:?set by the orchestrator}" "${AGENT_BRANCH:?set by the orchestrator}" "${AGENT_TASK:?set by the orchestrator}"

work=$(mktemp -d)
git clone --quiet "$AGENT_CLONE_URL" "$work/repo"
cd "$work/repo"
git checkout --quiet -b "$AGENT_BRANCH"

file="notes/$(printf '%s' "$AGENT_BRANCH" | tr / -).md"
mkdir -p notes
printf '%s\n' "$AGENT_TASK" > "$file"
git add "$file"
git -c user.name="bot-bottle sub-agent" -c user.email=sub-agent@bot-bottle.invalid commit --quiet -m "$AGENT_TASK"

# The gate's answer (pushed, or refused by which rule) comes back on stderr.
git push origin "HEAD:refs/heads/$AGENT_BRANCH"

echo "RESULT branch=$AGENT_BRANCH commit=$(git rev-parse HEAD) file=$file"
