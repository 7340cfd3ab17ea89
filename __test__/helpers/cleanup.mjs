// Registry of everything the helpers open, so a failed test cannot keep the
// worker process alive: spec files call `test.after.always(cleanupAll)`.
const cleanups = new Set()

/** Registers fn (sync or async) to run in cleanupAll(); returns an unregister function. */
export function onCleanup(fn) {
  cleanups.add(fn)
  return () => cleanups.delete(fn)
}

/** Registers a socket (destroyed) or server (closed) for cleanupAll(). */
export function track(resource) {
  if (!resource) return resource
  const off = onCleanup(() => {
    if (typeof resource.destroy === 'function') resource.destroy()
    else if (typeof resource.close === 'function') resource.close()
  })
  if (typeof resource.once === 'function') resource.once('close', off)
  return resource
}

/**
 * Destroys/closes everything still registered. As a `test.after` hook it is
 * given ava's execution context, whose `timeout` is a method: only a number counts.
 */
export async function cleanupAll(options) {
  const timeout = typeof options?.timeout === 'number' ? options.timeout : 5000
  const fns = [...cleanups]
  cleanups.clear()
  let timer
  await Promise.race([
    Promise.allSettled(fns.map(async (fn) => fn())),
    new Promise((r) => {
      timer = setTimeout(r, timeout)
      timer.unref()
    }),
  ])
  clearTimeout(timer)
}
