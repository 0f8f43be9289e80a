// No fire-and-forget promise without a rejection handler in the host, the agent or the
// protocol: a rejected promise nobody handles crashes Node (or, worse, is silently lost).
// A type-aware check over src/, agent/ and protocol/ (the rule of typescript-eslint's
// no-floating-promises, with `void` not counted as handling): a promise used as a statement
// or under `void` must end in `.catch(h)` or `.then(f, h)` (`.finally` passes what it follows),
// or come straight from a function whose doc comment promises it "never rejects" (its contract).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import ts from 'typescript';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** `file:line: text` of each floating promise in `files` (a whole program is checked). */
function floatingPromises(program: ts.Program, files: ReadonlySet<string>): string[] {
  const checker = program.getTypeChecker();
  const isPromise = (node: ts.Node): boolean => {
    const type = checker.getTypeAtLocation(node);
    return (type.isUnion() ? type.types : [type]).some((t) => checker.getPropertyOfType(t, 'then') !== undefined && t.getCallSignatures().length === 0);
  };
  const handled = (node: ts.Expression): boolean => {
    if (!ts.isCallExpression(node)) return false;
    const signature = checker.getResolvedSignature(node);
    if (signature && /never rejects/i.test(ts.displayPartsToString(signature.getDocumentationComment(checker)))) return true;
    if (!ts.isPropertyAccessExpression(node.expression)) return false;
    const method = node.expression.name.text;
    if (method === 'catch') return node.arguments.length >= 1;
    if (method === 'then') return node.arguments.length >= 2;
    if (method === 'finally') return handled(node.expression.expression);
    return false;
  };
  const found: string[] = [];
  const visit = (sf: ts.SourceFile, node: ts.Node): void => {
    const expr = ts.isExpressionStatement(node) ? node.expression : ts.isVoidExpression(node) ? node.expression : undefined;
    if (expr && !ts.isAwaitExpression(expr) && !ts.isBinaryExpression(expr) && !ts.isVoidExpression(expr) && isPromise(expr) && !handled(ts.skipPartiallyEmittedExpressions(expr))) {
      const { line } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
      found.push(`${path.relative(ROOT, sf.fileName)}:${line + 1}: ${node.getText(sf).split('\n')[0]}`);
    }
    ts.forEachChild(node, (child) => visit(sf, child));
  };
  for (const sf of program.getSourceFiles()) if (files.has(sf.fileName)) visit(sf, sf);
  return found;
}

function programOf(dir: string, include: (file: string) => boolean) {
  const parsed = ts.getParsedCommandLineOfConfigFile(path.join(dir, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => { throw new Error(String(d.messageText)); } })!;
  const files = parsed.fileNames.filter(include);
  return { program: ts.createProgram(files, parsed.options), files: new Set(files) };
}

test('no floating promises - every background promise in src/, agent/ and protocol/ has a rejection handler', () => {
  const { program, files } = programOf(ROOT, (f) => /^(src|agent|protocol)\//.test(path.relative(ROOT, f)));
  assert.ok(files.size > 50, 'the check sees the code');
  assert.deepEqual(floatingPromises(program, files), []);
});

test('no floating promises - the check finds `void p`, a bare call and an unhandled .then; it accepts handled ones and a "never rejects" contract', () => {
  const source = [
    'declare function work(): Promise<void>;',
    '/** Resolves when done. Never rejects. */',
    'declare function safe(): Promise<void>;',
    'void safe();',
    'void safe().then(() => {});',
    'void work();',
    'work();',
    'work().then(() => {});',
    'work().finally(() => {});',
    'work().catch(() => {});',
    'work().then(() => {}, () => {});',
    'work().catch(() => {}).finally(() => {});',
    'void 0;',
    'async function f() { await work(); }',
  ].join('\n');
  const file = path.join(ROOT, 'floating-sample.ts');
  const options: ts.CompilerOptions = { strict: true, noEmit: true, types: [], target: ts.ScriptTarget.ESNext };
  const host = ts.createCompilerHost(options);
  const read = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang) => (name === file ? ts.createSourceFile(name, source, lang) : read(name, lang));
  const program = ts.createProgram([file], options, host);
  assert.deepEqual(floatingPromises(program, new Set([file])).map((s) => s.replace(/^floating-sample\.ts:/, '')), [
    '5: void safe().then(() => {})',
    '6: void work()',
    '7: work();',
    '8: work().then(() => {});',
    '9: work().finally(() => {});',
  ]);
});
