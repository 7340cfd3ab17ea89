// Unit / native suite: runs on the host (whose kernel has no kTLS), so it
// exercises the userspace path. Child processes rather than worker threads:
// the native addon and raw fds behave better with process isolation.
export default {
  files: ['__test__/unit/**/*.spec.mjs', '__test__/native/**/*.spec.mjs'],
  timeout: '2m',
  workerThreads: false,
}
