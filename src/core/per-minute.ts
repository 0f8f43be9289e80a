// A budget of events per minute, for what an untrusted party can make the host write (log
// lines, audit records): the first `limit` events of a minute are within it, the rest are
// not, and the first one past it is flagged so the caller can say so once a minute.

export interface MinuteBudget {
  /** Counts one event: `within` while the minute's budget lasts; `over` for the first one past it. */
  (): { readonly within: boolean; readonly over: boolean };
}

export function perMinute(limit: number, now: () => number = Date.now): MinuteBudget {
  let windowStart = -Infinity;
  let used = 0;
  return () => {
    const t = now();
    if (t - windowStart >= 60_000) {
      windowStart = t;
      used = 0;
    }
    used++;
    return { within: used <= limit, over: used === limit + 1 };
  };
}
