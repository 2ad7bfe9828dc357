// Finding what a command left running in the agent. Everything a process
// starts inherits its environment (through fork, exec, setsid and double
// forks), so a marker variable set on the command alone finds its whole
// tree, daemons that left its process group and session included. A process
// that clears its environment (`env -i`) is not found.

/**
 * Shell function `kenv SIG NAME=VALUE`: send SIG to every process whose
 * environment holds NAME=VALUE. Uses only tr, grep and the kill builtin
 * (slim images have no /bin/kill; busybox has all three).
 */
export const KILL_BY_ENV_FN = `kenv() {
  for e in /proc/[0-9]*/environ; do
    p=\${e%/environ}; p=\${p#/proc/}
    tr '\\0' '\\n' < "$e" 2>/dev/null | grep -qxF "$2" && kill -$1 "$p" 2>/dev/null
  done
  return 0
}
`;
