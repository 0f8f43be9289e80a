// Crash points for the fault tests: when HAKO_FAILPOINT names this point, the host kills
// itself with SIGKILL right here, exactly as a power cut would. Unset, it does nothing.
// Only the owner's environment can set it; it cannot leak anything or be reached by an agent.

const armed = process.env.HAKO_FAILPOINT;

export function failpoint(name: string): void {
  if (armed === name) process.kill(process.pid, 'SIGKILL');
}
