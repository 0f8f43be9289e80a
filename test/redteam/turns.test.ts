// Red-team attacks on the life of a turn, against a real host, the real image and the
// scripted model: a compromised agent that keeps speaking after its turn has ended
// (attack 31) and one that floods its output folder with junk (attack 32).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { attack, startFixture, stillServes, type Fixture } from './support.ts';
import { ipcFileName } from '../../protocol/ipc.ts';

let f: Fixture;
before(async () => { f = await startFixture(); });
after(async () => { await f?.close(); });

const ipcDir = (group: string, sub: 'in' | 'out' | 'rejected') => path.join(f.hako.home, 'ipc', group, sub);

async function assistantTexts(group: string, after: string): Promise<string[]> {
  return (await f.hako.messages(group, after)).filter((m) => m.role === 'assistant').map((m) => m.text);
}

async function auditRecords(kind: string, group: string): Promise<{ kind: string; data: Record<string, unknown> }[]> {
  const r = await f.hako.cli(['audit', '--kind', kind, '--group', group, '--json', '--limit', '1000']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { kind: string; data: Record<string, unknown> }[];
}

/** Waits (bounded) until `check` holds; for effects that have no event of their own. */
async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms; host output:\n${f.hako.output.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// A background process that survives its turn: it waits until the host has removed the
// turn's input (the turn is over), then posts 300 000 characters without a batch and as
// many again under the ended batch, and then stays alive for the next turn.
const STRAY = String.raw`
F="$1"; B="$2"; echo $$ > /workspace/group/stray.pid
while [ -e "$F" ]; do sleep 0.1; done
T=$(head -c 50000 /dev/zero | tr "\0" x)
i=0
while [ $i -lt 6 ]; do
  i=$((i+1))
  for kind in nobatch oldreply oldsend; do
    case $kind in
      nobatch) body="{\"v\":1,\"id\":\"late$kind$i\",\"type\":\"send_message\",\"text\":\"LATE $T\"}";;
      oldreply) body="{\"v\":1,\"id\":\"late$kind$i\",\"type\":\"reply\",\"batch\":\"$B\",\"text\":\"LATE $T\"}";;
      *) body="{\"v\":1,\"id\":\"late$kind$i\",\"type\":\"send_message\",\"batch\":\"$B\",\"text\":\"LATE $T\"}";;
    esac
    n=$(printf "%015d-%06d-late%s%s" "$(date +%s%3N)" $i $kind $i)
    printf %s "$body" > /ipc/out/.tmp-$n && mv /ipc/out/.tmp-$n /ipc/out/$n.json
  done
  echo $i > /workspace/group/stray.progress
done
while :; do sleep 1; done
`;

describe('a turn that has ended cannot speak', () => {
  test('attack 31 - a setsid background process outlives its turn and posts without a batch and under the ended batch: it is killed at the turn\'s end and no word of it reaches the chat', async () => {
    const from = await f.hako.post('team', 'before the attack');
    const first = await attack(f, 'team', [
      `cat > /tmp/stray.sh <<'EOF'\n${STRAY}\nEOF\n` +
      'F=$(grep -l \'"type":"batch"\' /ipc/in/*.json | tail -1); B=$(basename "$F" .json | cut -d- -f3-); echo "$B" > /workspace/group/b1\n' +
      'setsid sh /tmp/stray.sh "$F" "$B" > /dev/null 2>&1 < /dev/null &\n' +
      'for i in $(seq 1 50); do [ -s /workspace/group/stray.pid ] && break; sleep 0.1; done; echo "launched $(cat /workspace/group/stray.pid) for batch $B"',
    ]);
    assert.match(first[0]!, /launched \d+ for batch \S+/);
    const oldBatch = fs.readFileSync(path.join(f.hako.home, 'groups', 'team', 'b1'), 'utf8').trim();

    // The next turn in the same group: is the stray still there, and can this turn speak
    // for the ended batch or without one?
    const second = await attack(f, 'team', [
      'alive() { grep -lq "stray[.]sh" /proc/[0-9]*/cmdline 2>/dev/null; }\n' +
      'for i in $(seq 1 100); do alive || break; [ "$(cat /workspace/group/stray.progress 2>/dev/null)" = 6 ] && break; sleep 0.1; done\n' +
      'if alive; then echo STRAY-ALIVE; else echo stray-gone; fi; echo "progress=$(cat /workspace/group/stray.progress 2>/dev/null)"',
      `B=$(cat /workspace/group/b1); n=$(date +%s%3N)\n` +
      `printf '{"v":1,"id":"nobatch-in-turn","type":"send_message","text":"NOBATCH-IN-TURN"}' > /ipc/out/.tmp-1 && mv /ipc/out/.tmp-1 /ipc/out/$(printf %015d-000001-nobatch-in-turn "$n").json\n` +
      `printf '{"v":1,"id":"oldbatch-in-turn","type":"reply","batch":"%s","text":"OLDBATCH-IN-TURN"}' "$B" > /ipc/out/.tmp-2 && mv /ipc/out/.tmp-2 /ipc/out/$(printf %015d-000002-oldbatch-in-turn "$n").json; echo written`,
    ]);
    assert.match(second[1]!, /written/);
    await stillServes(f, 'team');

    const texts = await assistantTexts('team', from);
    assert.deepEqual(texts.filter((t) => /LATE|NOBATCH-IN-TURN|OLDBATCH-IN-TURN/.test(t)).map((t) => t.slice(0, 40)), [], 'no word of the stray, nor of a forged file, reached the chat');
    const total = texts.reduce((n, t) => n + t.length, 0);
    assert.ok(total <= 200_000, `the chat got ${total} characters in these turns; a turn's limit is 200000`);
    assert.match(second[0]!, /stray-gone/, `the background process was dead by the next turn: ${second[0]}`);
    const swept = await auditRecords('container.strays', 'team');
    const sweepLog = f.hako.logEvents().filter((e) => /killed processes|recycling/.test(e.msg));
    assert.ok(swept.some((r) => Number(r.data.killed) >= 1), `the kill is audited: ${JSON.stringify(swept)}; log: ${JSON.stringify(sweepLog)}`);
    const reasons = fs.readdirSync(ipcDir('team', 'rejected')).filter((n) => /nobatch-in-turn|oldbatch-in-turn/.test(n) && n.endsWith('.reason'))
      .map((n) => fs.readFileSync(path.join(ipcDir('team', 'rejected'), n), 'utf8')).join('');
    assert.match(reasons, /without a batch/);
    assert.match(reasons, new RegExp(`batch ${oldBatch} is not this group's running turn`));
  });

  test('attack 31 - files that arrive while no turn runs (a message without a batch, one under an ended batch, a task request) are refused, and nothing is answered', async () => {
    const from = await f.hako.post('team', 'before the late files');
    const turn = await attack(f, 'team', ['echo "$(grep -l \'"type":"batch"\' /ipc/in/*.json | tail -1)"']);
    const oldBatch = path.basename(turn[0]!.trim(), '.json').split('-').slice(2).join('-');
    assert.ok(oldBatch, turn[0]);
    // The reply reaches the client before the agent's `done` ends the turn: the host clears
    // in/ once the turn is closed, so an empty in/ says no turn runs any more.
    await eventually('the turn is over (its input cleared)', () => fs.readdirSync(ipcDir('team', 'in')).filter((n) => !n.startsWith('.')).length === 0);
    // The container is warm, its turn is over: a process the host did not see writes these.
    const late = [
      { v: 1, id: 'late-nobatch', type: 'send_message', text: 'LATE-NOBATCH' },
      { v: 1, id: 'late-oldbatch', type: 'reply', batch: oldBatch, text: 'LATE-OLDBATCH' },
      { v: 1, id: 'late-request', type: 'task.schedule', prompt: 'LATE-TASK', every_seconds: 60 },
    ];
    const names = late.map((o) => ipcFileName(o.id));
    for (const [i, o] of late.entries()) {
      fs.writeFileSync(path.join(ipcDir('team', 'out'), `.tmp-${names[i]}`), JSON.stringify(o));
      fs.renameSync(path.join(ipcDir('team', 'out'), `.tmp-${names[i]}`), path.join(ipcDir('team', 'out'), names[i]!));
    }
    await eventually('the host has handled the late files', () => fs.readdirSync(ipcDir('team', 'out')).every((n) => !names.includes(n)));
    const reasons = fs.readdirSync(ipcDir('team', 'rejected')).filter((n) => /late-(nobatch|oldbatch|request)/.test(n) && n.endsWith('.reason'));
    assert.equal(reasons.length, 3, `each late file was rejected with a reason: ${reasons.join(', ')}`);
    const text = reasons.map((n) => fs.readFileSync(path.join(ipcDir('team', 'rejected'), n), 'utf8')).join('');
    assert.match(text, /no running turn/);
    const tasks = await f.hako.cli(['tasks', 'list', '--all']);
    assert.equal(tasks.code, 0, tasks.stderr);
    assert.doesNotMatch(tasks.stdout, /LATE-TASK/, 'no task was scheduled');
    assert.deepEqual((await assistantTexts('team', from)).filter((t) => /LATE-/.test(t)), []);
    assert.deepEqual(fs.readdirSync(ipcDir('team', 'in')).filter((n) => !n.startsWith('.')), [], 'no response was written for the refused request');
  });
});

describe('rejected/ is bounded', () => {
  test('attack 32 - flood out/ with 3000 junk files and leave stale temporaries: the turn is stopped, the group told, the flood audited, rejected/ stays bounded and out/ is cleaned', async () => {
    assert.equal((await f.hako.cli(['groups', 'add', 'junker'])).code, 0);
    f.model.script(
      { toolCalls: [{ name: 'bash', args: { timeout_ms: 120_000, command: 'for i in $(seq 1 3000); do printf -v n %06d $i; echo "{junk $i" > /ipc/out/000000000000002-$n-junk$i.json; done; for i in 1 2 3; do echo partial > /ipc/out/.tmp-stale$i; done; mkdir /ipc/out/.tmp-dir; echo flooded' } }] },
      { text: 'flood finished' },
    );
    const id = await f.hako.post('junker', '@hako flood');
    let texts: string[] = [];
    await eventually('the group is told its turn was stopped', async () => {
      texts = await assistantTexts('junker', id);
      return texts.some((t) => /I stopped this turn/.test(t));
    }, 120_000);
    assert.match(texts.find((t) => /I stopped this turn/.test(t))!, /more than 1000 files .* rejected/);
    const out = ipcDir('junker', 'out');
    await eventually('every junk file and temporary leaves out/', () => fs.readdirSync(out).length === 0);
    const rejected = fs.readdirSync(ipcDir('junker', 'rejected'));
    assert.ok(rejected.length <= 2 * 400, `rejected/ keeps only the newest few hundred (${rejected.length} entries)`);
    assert.ok(rejected.filter((n) => n.endsWith('.reason')).length >= 300, 'the newest rejected files keep their reasons');
    const bytes = rejected.reduce((n, name) => n + fs.lstatSync(path.join(ipcDir('junker', 'rejected'), name)).size, 0);
    assert.ok(bytes < 64 * 1024 * 1024, `${bytes} bytes`);
    const flood = await auditRecords('ipc.flood', 'junker');
    assert.equal(flood.length, 1, `the flood is audited once: ${JSON.stringify(flood)}`);
    await stillServes(f, 'main');
    await stillServes(f, 'junker');
  });
});
