// Scenario processes: the orchestrator forks one process per endpoint and
// drives it with request/response messages over the IPC channel.
//
//   parent: const p = forkPeer(file); await p.call('listen', {...}); await p.close()
//   child:  servePeer({ listen: async (args) => ({ port }) })
import { fork } from 'node:child_process'
import { pathToFileURL } from 'node:url'

const live = new Set()
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

/** Forks `file --peer`; `execArgv` adds node flags (e.g. --expose-gc, --cpu-prof). */
export function forkPeer(file, { execArgv = [], label = file } = {}) {
  const child = fork(file, ['--peer'], {
    execArgv,
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  live.add(child)
  const waiting = new Map()
  let nextId = 1
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child)
      for (const { reject } of waiting.values()) {
        reject(new Error(`${label}: peer exited (code ${code}, signal ${signal}) before answering`))
      }
      waiting.clear()
      resolve({ code, signal })
    })
  })
  child.on('message', ({ id, result, error }) => {
    const pending = waiting.get(id)
    if (!pending) return
    waiting.delete(id)
    if (error) pending.reject(Object.assign(new Error(`${label}: ${error.message}`), { code: error.code, peerStack: error.stack }))
    else pending.resolve(result)
  })
  return {
    pid: child.pid,
    call(cmd, args = {}) {
      const id = nextId++
      return new Promise((resolve, reject) => {
        waiting.set(id, { resolve, reject })
        child.send({ id, cmd, args })
      })
    },
    /** Asks the peer to exit (so --cpu-prof files get written), then makes sure. */
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        child.disconnect()
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
        await exited
        clearTimeout(timer)
      }
    },
  }
}

/** Child side: answers each message with its handler's result or error. */
export function servePeer(handlers) {
  process.on('message', async ({ id, cmd, args }) => {
    try {
      const handler = handlers[cmd]
      if (!handler) throw new Error(`unknown command ${cmd}`)
      process.send({ id, result: await handler(args) })
    } catch (err) {
      process.send({ id, error: { message: err?.message ?? String(err), code: err?.code, stack: err?.stack } })
    }
  })
  // The parent went away (or close() was called): exit normally.
  process.once('disconnect', () => process.exit(0))
}

/** True when this module's file was started as a forked peer. */
export function isPeer(importMetaUrl) {
  return process.argv.includes('--peer') && importMetaUrl === pathToFileURL(process.argv[1]).href
}

/** CPU seconds (user + system, all threads) since `start` (a process.cpuUsage()). */
export function cpuSecondsSince(start) {
  const d = process.cpuUsage(start)
  return (d.user + d.system) / 1e6
}

/** { total, user, system } CPU seconds since `start`: user time is our code and V8, system time the kernel's. */
export function cpuSplitSince(start) {
  const d = process.cpuUsage(start)
  return { total: (d.user + d.system) / 1e6, user: d.user / 1e6, system: d.system / 1e6 }
}

/** CPU seconds this process has used so far (user + system, all threads). */
export function cpuSeconds() {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

/** Monotonic clock in ns as a Number; CLOCK_MONOTONIC, so comparable across processes. */
export const nowNs = () => Number(process.hrtime.bigint())

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
