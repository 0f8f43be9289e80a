import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { blockedBy, checkMount, DEFAULT_BLOCKED, loadMountPolicy, othersOf, parseMountArg, PolicyError, resolveMounts, type MountContext, type OtherMount } from '../../src/core/policy.ts';

function world(t: { after(fn: () => void): void }, policy?: unknown) {
  const base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'hako-policy-')));
  t.after(() => fs.rmSync(base, { recursive: true, force: true }));
  const dirs = { notes: path.join(base, 'user', 'notes'), shared: path.join(base, 'shared'), outside: path.join(base, 'outside'), home: path.join(base, 'hako-home'), config: path.join(base, 'hako-config') };
  for (const d of Object.values(dirs)) fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(dirs.outside, 'secret.txt'), 'canary');
  if (policy !== undefined) fs.writeFileSync(path.join(dirs.config, 'mounts.json'), JSON.stringify(policy));
  const ctx = (isMain = false, others: readonly OtherMount[] = []): MountContext => ({ group: 'sales', isMain, home: dirs.home, configDir: dirs.config, others });
  return { base, dirs, ctx, policy: () => loadMountPolicy(dirs.config) };
}

test('mount policy - no policy file: nothing may be mounted, and the reason says so', (t) => {
  const w = world(t);
  const p = w.policy();
  assert.equal(p.file, null);
  const c = checkMount(p, { hostPath: w.dirs.notes, readWrite: false }, w.ctx());
  assert.equal(c.ok, false);
  if (!c.ok) assert.match(c.reason, /group "sales" mounts .*notes: there is no mount policy.*edit .*mounts\.json/);
});

test('mount policy - a folder under an allowed root is mounted read-only by default', (t) => {
  const w = world(t);
  fs.writeFileSync(path.join(w.dirs.config, 'mounts.json'), JSON.stringify({ allowedRoots: [{ path: path.join(w.base, 'user') }] }));
  const c = checkMount(w.policy(), { hostPath: w.dirs.notes, readWrite: false }, w.ctx());
  const st = fs.statSync(w.dirs.notes, { bigint: true });
  assert.deepEqual(c, { ok: true, hostPath: w.dirs.notes, readonly: true, identity: `${st.dev}:${st.ino}` });
});

test('mount policy - outside every root, ".." and relative paths are refused with the rule', (t) => {
  const w = world(t);
  fs.writeFileSync(path.join(w.dirs.config, 'mounts.json'), JSON.stringify({ allowedRoots: [{ path: path.join(w.base, 'user') }] }));
  const p = w.policy();
  const reasons = [
    [w.dirs.outside, /not under an allowed root/],
    [`${w.dirs.notes}/../../outside`, /contains "\.\."/],
    ['notes', /absolute/],
    [path.join(w.base, 'user', 'missing'), /does not exist/],
  ] as const;
  for (const [hostPath, reason] of reasons) {
    const c = checkMount(p, { hostPath, readWrite: false }, w.ctx());
    assert.equal(c.ok, false, hostPath);
    if (!c.ok) assert.match(c.reason, reason, hostPath);
  }
});

test('mount policy - a symlink that leads out of the allowed root is refused on its real path', (t) => {
  const w = world(t, {});
  fs.writeFileSync(path.join(w.dirs.config, 'mounts.json'), JSON.stringify({ allowedRoots: [{ path: path.join(w.base, 'user') }] }));
  const link = path.join(w.base, 'user', 'escape');
  fs.symlinkSync(w.dirs.outside, link);
  const c = checkMount(w.policy(), { hostPath: link, readWrite: false }, w.ctx());
  assert.equal(c.ok, false);
  if (!c.ok) assert.match(c.reason, /resolves to .*outside, which is not under an allowed root/);
});

test('mount policy - default blocked patterns refuse secrets folders and key files, by name or inside', (t) => {
  const w = world(t);
  fs.writeFileSync(path.join(w.dirs.config, 'mounts.json'), JSON.stringify({ allowedRoots: [{ path: w.base }] }));
  const ssh = path.join(w.base, 'user', '.ssh');
  fs.mkdirSync(ssh);
  const c1 = checkMount(w.policy(), { hostPath: ssh, readWrite: false }, w.ctx(true));
  assert.equal(c1.ok, false);
  if (!c1.ok) assert.match(c1.reason, /blocked by pattern \.ssh/);
  const c2 = checkMount(w.policy(), { hostPath: path.join(w.base, 'user'), readWrite: false }, w.ctx(true));
  assert.equal(c2.ok, false, 'a folder that holds .ssh is refused too');
  if (!c2.ok) assert.match(c2.reason, /contains \.ssh, blocked by pattern \.ssh/);
  for (const name of ['.gnupg', '.aws', 'id_rsa', 'server.pem', 'tls.key', 'credentials', 'secrets', '.env', '.env.production']) {
    assert.ok(blockedBy(`/x/${name}`, DEFAULT_BLOCKED), name);
  }
  assert.ok(blockedBy('/home/u/.config/hako', DEFAULT_BLOCKED), 'multi-segment patterns match consecutive components');
  assert.equal(blockedBy('/home/u/notes/keynote', DEFAULT_BLOCKED), undefined, 'no partial-name matches');
});

test('mount policy - HAKO_HOME and HAKO_CONFIG can never be mounted, nor a folder that contains them', (t) => {
  const w = world(t);
  fs.writeFileSync(path.join(w.dirs.config, 'mounts.json'), JSON.stringify({ allowedRoots: [{ path: w.base, readWrite: true }] }));
  for (const p of [w.dirs.home, w.dirs.config, w.base]) {
    const c = checkMount(w.policy(), { hostPath: p, readWrite: false }, w.ctx(true));
    assert.equal(c.ok, false, p);
    if (!c.ok) assert.match(c.reason, /overlaps HAKO_(HOME|CONFIG)/, p);
  }
});

test('mount policy - read-write needs a read-write root, and for non-main groups its explicit consent', (t) => {
  const w = world(t);
  fs.writeFileSync(path.join(w.dirs.config, 'mounts.json'), JSON.stringify({ allowedRoots: [{ path: path.join(w.base, 'user'), readWrite: true }, { path: w.dirs.shared }] }));
  const p = w.policy();
  assert.deepEqual(checkMount(p, { hostPath: w.dirs.notes, readWrite: true }, w.ctx(true)), { ...checkMount(p, { hostPath: w.dirs.notes, readWrite: false }, w.ctx(true)), readonly: false });
  const nonMain = checkMount(p, { hostPath: w.dirs.notes, readWrite: true }, w.ctx(false));
  assert.equal(nonMain.ok, false);
  if (!nonMain.ok) assert.match(nonMain.reason, /read-only for groups other than main/);
  const roRoot = checkMount(p, { hostPath: w.dirs.shared, readWrite: true }, w.ctx(true));
  assert.equal(roRoot.ok, false);
  if (!roRoot.ok) assert.match(roRoot.reason, /root .*shared is read-only/);
});

test('mount policy - resolved mounts land under /workspace/extra with unique names', (t) => {
  const w = world(t);
  fs.writeFileSync(path.join(w.dirs.config, 'mounts.json'), JSON.stringify({ allowedRoots: [{ path: w.base }] }));
  const other = path.join(w.dirs.shared, 'notes');
  fs.mkdirSync(other);
  const mounts = resolveMounts(w.policy(), [{ hostPath: w.dirs.notes, readWrite: false }, { hostPath: other, readWrite: false }], w.ctx(true));
  assert.deepEqual(mounts.map((m) => m.container), ['/workspace/extra/notes', '/workspace/extra/notes-2']);
  assert.ok(mounts.every((m) => m.readonly));
  assert.throws(() => resolveMounts(w.policy(), [{ hostPath: w.dirs.home, readWrite: false }], w.ctx(true)), PolicyError);
});

test('mount policy - a resolved mount carries the device and inode of the folder that was checked, not of what its path later names', (t) => {
  const w = world(t);
  fs.writeFileSync(path.join(w.dirs.config, 'mounts.json'), JSON.stringify({ allowedRoots: [{ path: w.base }] }));
  const [m] = resolveMounts(w.policy(), [{ hostPath: w.dirs.notes, readWrite: false }], w.ctx());
  const before = fs.statSync(w.dirs.notes, { bigint: true });
  assert.equal(m!.identity, `${before.dev}:${before.ino}`);
  // The path is swapped for a link after the check: the recorded identity still names the checked folder.
  fs.renameSync(w.dirs.notes, `${w.dirs.notes}.x`);
  fs.symlinkSync(w.dirs.outside, w.dirs.notes);
  const now = fs.statSync(w.dirs.notes, { bigint: true });
  assert.notEqual(m!.identity, `${now.dev}:${now.ino}`);
});

test('mount policy - attack 29: groups may not share a folder where either can write, in either direction, on the path as given or resolved', (t) => {
  const w = world(t);
  fs.writeFileSync(path.join(w.dirs.config, 'mounts.json'), JSON.stringify({ allowedRoots: [{ path: w.base, readWrite: true, nonMainReadWrite: true }] }));
  const sub = path.join(w.dirs.shared, 'sub');
  fs.mkdirSync(sub);
  const link = path.join(w.base, 'user', 'to-shared');
  fs.symlinkSync(w.dirs.shared, link);
  const p = w.policy();
  const writer: OtherMount = { group: 'writer', hostPath: w.dirs.shared, readWrite: true };
  const cases = [
    // [request, the other group's mount, the refusal]
    [{ hostPath: sub, readWrite: false }, writer, /mounts .*sub: it lies inside .*shared, which group "writer" mounts read-write; .*swap .*hako groups mounts writer remove .*shared/],
    [{ hostPath: w.dirs.shared, readWrite: false }, writer, /it lies inside .*shared, which group "writer" mounts read-write/],
    [{ hostPath: path.join(link, 'sub'), readWrite: false }, writer, /it lies inside .*shared, which group "writer"/],
    [{ hostPath: w.base, readWrite: false }, writer, /it contains .*shared, which group "writer" mounts read-write/],
    [{ hostPath: w.dirs.shared, readWrite: true }, { group: 'reader', hostPath: sub, readWrite: false }, /it contains .*sub, which group "reader" mounts read-only/],
    [{ hostPath: sub, readWrite: true }, { group: 'reader', hostPath: link, readWrite: false }, /it lies inside .*to-shared, which group "reader" mounts read-only/],
  ] as const;
  for (const [req, other, reason] of cases) {
    const c = checkMount(p, req, w.ctx(false, [other]));
    assert.equal(c.ok, false, `${req.hostPath} beside ${other.hostPath}`);
    if (!c.ok) assert.match(c.reason, reason);
  }
  // Read-only beside read-only, and folders side by side, are fine.
  assert.equal(checkMount(p, { hostPath: sub, readWrite: false }, w.ctx(false, [{ group: 'reader', hostPath: w.dirs.shared, readWrite: false }])).ok, true);
  assert.equal(checkMount(p, { hostPath: w.dirs.notes, readWrite: true }, w.ctx(false, [writer])).ok, true);
  // A folder mid-swap (missing) is refused for the overlap, not for being absent.
  fs.rmSync(sub, { recursive: true });
  const gone = checkMount(p, { hostPath: sub, readWrite: false }, w.ctx(false, [writer]));
  assert.equal(gone.ok, false);
  if (!gone.ok) assert.match(gone.reason, /lies inside/);
  // The group's own mounts are not "others".
  assert.deepEqual(othersOf([{ name: 'sales', mounts: [{ hostPath: '/a', readWrite: true }] }, { name: 'writer', mounts: [{ hostPath: '/b', readWrite: true }] }], 'sales'), [{ group: 'writer', hostPath: '/b', readWrite: true }]);
});

test('mount policy - a malformed mounts.json is a clear error naming the file', (t) => {
  const w = world(t);
  fs.writeFileSync(path.join(w.dirs.config, 'mounts.json'), '{"allowedRoots": [');
  assert.throws(() => w.policy(), /mounts\.json is not valid JSON/);
  fs.writeFileSync(path.join(w.dirs.config, 'mounts.json'), JSON.stringify({ allowedRoots: [{ path: 'relative' }] }));
  assert.throws(() => w.policy(), /allowedRoots\[0\]\.path must be an absolute path/);
});

test('mount arguments - HOSTPATH[:ro|:rw]', () => {
  assert.deepEqual(parseMountArg('/srv/notes'), { hostPath: '/srv/notes', readWrite: false });
  assert.deepEqual(parseMountArg('/srv/notes:rw'), { hostPath: '/srv/notes', readWrite: true });
  assert.deepEqual(parseMountArg('~/a:ro'), { hostPath: '~/a', readWrite: false });
  assert.throws(() => parseMountArg(':rw'), /empty/);
});

import { domainsFor, loadEgressConfig, loadSecrets } from '../../src/core/policy.ts';

function configDir(t: { after(fn: () => void): void }, files: Record<string, string>, mode = 0o600): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-egresscfg-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const [name, body] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), body, { mode });
  return dir;
}

test('egress config - no file: no domains and no secrets for anyone', (t) => {
  const cfg = loadEgressConfig(configDir(t, {}));
  assert.deepEqual(domainsFor(cfg, 'main'), []);
  assert.deepEqual(cfg.secrets, []);
});

test('egress config - per-group domains plus the "*" entry, lower-cased', (t) => {
  const dir = configDir(t, { 'egress.json': JSON.stringify({ groups: { '*': ['Example.com'], main: ['api.github.com', '*.wikipedia.org'] } }) });
  const cfg = loadEgressConfig(dir);
  assert.deepEqual(domainsFor(cfg, 'main'), ['example.com', 'api.github.com', '*.wikipedia.org']);
  assert.deepEqual(domainsFor(cfg, 'sales'), ['example.com']);
});

test('egress config - malformed entries are refused with the field that is wrong', (t) => {
  assert.throws(() => loadEgressConfig(configDir(t, { 'egress.json': '{' })), /egress\.json is not valid JSON/);
  assert.throws(() => loadEgressConfig(configDir(t, { 'egress.json': JSON.stringify({ groups: { main: ['http://x.com/'] } }) })), /groups\.main must be a list of domain names/);
  assert.throws(() => loadEgressConfig(configDir(t, { 'egress.json': JSON.stringify({ secrets: { GH: { hosts: [], groups: ['main'] } } }) })), /secrets\.GH\.hosts/);
  assert.throws(() => loadEgressConfig(configDir(t, { 'egress.json': JSON.stringify({ secrets: { lower: { hosts: ['a.com'], groups: ['main'] } } }) })), /UPPER_SNAKE_CASE/);
});

test('egress config - a secret goes only into the headers its rule names: authorization unless told otherwise', (t) => {
  const cfg = loadEgressConfig(configDir(t, { 'egress.json': JSON.stringify({ secrets: {
    GH: { hosts: ['api.github.com'], groups: ['main'] },
    KEY: { hosts: ['api.example.com'], groups: ['main'], headers: ['X-Api-Key'] },
  } }) }));
  assert.deepEqual(cfg.secrets.map((s) => [s.name, s.headers]), [['GH', ['authorization']], ['KEY', ['x-api-key']]]);
  assert.throws(() => loadEgressConfig(configDir(t, { 'egress.json': JSON.stringify({ secrets: { GH: { hosts: ['a.com'], groups: ['main'], headers: [] } } }) })), /secrets\.GH\.headers must list the request headers/);
  assert.throws(() => loadEgressConfig(configDir(t, { 'egress.json': JSON.stringify({ secrets: { GH: { hosts: ['a.com'], groups: ['main'], headers: ['bad header:'] } } }) })), /secrets\.GH\.headers/);
});

test('secrets - a secrets.env readable by others is refused, naming the fix', (t) => {
  const dir = configDir(t, { 'secrets.env': 'GH_TOKEN=ghp_0123456789\n' }, 0o644);
  fs.chmodSync(path.join(dir, 'secrets.env'), 0o644);
  assert.throws(() => loadSecrets(dir, [{ name: 'GH_TOKEN', hosts: ['api.github.com'], groups: ['main'], headers: ['authorization'] }]), /mode 644.*chmod 600/);
});

test('secrets - values are read; an unbound or malformed secret is an error that never shows the value', (t) => {
  const rules = [{ name: 'GH_TOKEN', hosts: ['api.github.com'], groups: ['main'], headers: ['authorization'] }];
  const ok = loadSecrets(configDir(t, { 'secrets.env': '# tokens\nGH_TOKEN="ghp_0123456789"\n' }), rules);
  assert.equal(ok.get('GH_TOKEN'), 'ghp_0123456789');
  const unbound = configDir(t, { 'secrets.env': 'OTHER=supersecretvalue\n' });
  assert.throws(() => loadSecrets(unbound, rules), (e: unknown) => /OTHER has no rule in egress\.json/.test(String(e)) && !String(e).includes('supersecretvalue'));
  const bad = configDir(t, { 'secrets.env': 'not a line\n' });
  assert.throws(() => loadSecrets(bad, rules), /secrets\.env:1: expected NAME=value/);
});
