// Where readiness reports come from: Node's own loop on the main thread (no
// thread of ours), a reactor thread inside worker threads. Either way the
// data is intact, and callbacks run with Node's usual nextTick semantics.
import test from 'ava'
import { execFile } from 'node:child_process'
import { Worker } from 'node:worker_threads'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'

const PROBE = fileURLToPath(new URL('../helpers/reactor-probe.mjs', import.meta.url))
const THROWING_LISTENER = fileURLToPath(new URL('../helpers/throwing-listener.mjs', import.meta.url))

/** Runs `script` as its own process (so on its main thread) and parses the JSON it prints. */
function runScript(script, args = [], timeout = 60000) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [script, ...args], { timeout }, (err, stdout, stderr) => {
      if (err) return reject(Object.assign(err, { stderr }))
      resolve(JSON.parse(stdout))
    })
  })
}

const runOnMainThread = (options = {}) => runScript(PROBE, [JSON.stringify(options)])

test('on the main thread readiness comes through Node’s loop: no reactor thread is started', async (t) => {
  const result = await runOnMainThread()
  t.true(result.intact)
  t.false(result.threads.includes('ktls-reactor'), result.threads.join(','))
})

test('inside a worker thread a reactor thread carries readiness, and the worker exits cleanly', async (t) => {
  const worker = new Worker(PROBE, { workerData: {} })
  const [result] = await once(worker, 'message')
  t.true(result.intact)
  t.true(result.threads.includes('ktls-reactor'), result.threads.join(','))
  const [code] = await once(worker, 'exit')
  t.is(code, 0)
})

test('an exception thrown in a nextTick scheduled by a socket callback is an uncaught exception', async (t) => {
  const result = await runOnMainThread({ throwInTick: true })
  t.is(result.uncaught, 'thrown in a nextTick of a data handler')
})

test('a throw from a data listener is an uncaught exception, as from a net.Socket, and leaves the socket open', async (t) => {
  const result = await runScript(THROWING_LISTENER, [], 30000)
  t.is(result.uncaught, 'thrown by a data listener')
  t.deepEqual(result.socketErrors, [])
  t.false(result.destroyed)
})
