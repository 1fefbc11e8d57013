# The pty chardev's Node addon (native/pty.c -> build/Release/chardev_pty.node). npm builds it
# on install (`node-gyp rebuild`, its default for a package with a binding.gyp); by hand:
# `npm exec node-gyp rebuild`.
{
  "targets": [
    {
      "target_name": "chardev_pty",
      "sources": ["native/pty.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
      # Windows has no POSIX ptys: build an empty module there so installing still works
      # (node_pty.ts reports the pty as unsupported without loading it).
      "conditions": [["OS=='win'", {"sources!": ["native/pty.c"]}]],
    }
  ]
}
