// docs/api.md names every export of the package, every option of its
// options types, and every public member of KtlsSocket and Server, as the
// typings (dist/*.d.ts) declare them.
import test from 'ava'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const doc = readFileSync(join(root, 'docs', 'api.md'), 'utf8')
const documented = (name) => new RegExp(`\`${name}\\b[^\`]*\``).test(doc)

const program = ts.createProgram([join(root, 'dist', 'index.d.ts')], { strict: true, skipLibCheck: true })
const checker = program.getTypeChecker()
const index = checker.getSymbolAtLocation(program.getSourceFile(join(root, 'dist', 'index.d.ts')))
const exported = checker.getExportsOfModule(index)

function declarationsOf(symbol) {
  const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol
  return target.declarations ?? []
}

const isPublic = (member) => {
  if (!member.name || ts.isConstructorDeclaration(member)) return false
  if (ts.getCombinedModifierFlags(member) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) return false
  if (ts.getJSDocTags(member).some((tag) => tag.tagName.text === 'internal')) return false
  return !member.name.getText().startsWith('_')
}

/** The public members declared by an interface or class (not inherited). */
function ownMembers(declaration) {
  return (declaration.members ?? []).filter(isPublic).map((m) => m.name.getText())
}

/** The class a `const X: typeof native.X` export stands for. */
function classBehind(name) {
  const file = program.getSourceFile(join(root, 'dist', name === 'Server' ? 'server.d.ts' : 'socket.d.ts'))
  return file.statements.find((s) => ts.isClassDeclaration(s) && /KtlsSocket|TlsServer/.test(s.name?.text ?? ''))
}

test('every export of the package is in docs/api.md', (t) => {
  t.true(exported.length > 20)
  for (const symbol of exported) t.true(documented(symbol.name), `export ${symbol.name}`)
})

test('every option and field of the public types is in docs/api.md', (t) => {
  const types = ['KtlsSocketOptions', 'ConnectOptions', 'ServerOptions', 'SecureContextOptions', 'SendFileOptions', 'ServeStaticOptions', 'Capabilities', 'KtlsStatus', 'UndiciConnectorOptions']
  for (const name of types) {
    const symbol = exported.find((s) => s.name === name)
    t.truthy(symbol, `${name} is exported`)
    const declaration = declarationsOf(symbol).find((d) => ts.isInterfaceDeclaration(d))
    t.truthy(declaration, `${name} is an interface`)
    for (const member of ownMembers(declaration)) t.true(documented(member), `${name}.${member}`)
  }
})

test('every public member of KtlsSocket and Server is in docs/api.md', (t) => {
  for (const name of ['KtlsSocket', 'Server']) {
    const members = ownMembers(classBehind(name))
    t.true(members.length > 0, `${name} has members`)
    for (const member of members) t.true(documented(member), `${name}#${member}`)
  }
})
