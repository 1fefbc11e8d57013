/*
 * The pty primitives of the `pty` chardev on Node (host-ts/runtime/node_pty.ts loads this):
 * allocate a pty pair without spawning anything, and the few non-blocking calls on its master
 * that the shared chardev polls with. Node has no API for any of this, and the node-pty
 * package's "open without spawning" object signals every process on the machine when it is
 * destroyed, so we keep our own.
 *
 * Exports (the contract is PtyPrimitives in host-ts/runtime/types.ts):
 *   openpt()          -> { fd, slavePath }   throws an Error with `code` (errno name) and `errno`
 *   poll(fd)          -> revents bits (POLLIN/POLLOUT/POLLHUP/...) or -errno
 *   read(fd, max)     -> Buffer (empty at EOF) or -errno
 *   write(fd, bytes)  -> bytes written or -errno
 *   close(fd)         -> undefined
 */

#define _GNU_SOURCE /* ptsname_r and cfmakeraw in glibc */
#define NAPI_VERSION 8

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <node_api.h>

/* Large enough for any pty's buffered input in one call; the JS side reads again if needed. */
#define MAX_READ_CHUNK 65536

/* Bails out of a napi_value function: N-API failures here mean a bug in our argument handling. */
#define NAPI_CHECK(env, call)                                                  \
  do {                                                                         \
    if ((call) != napi_ok) {                                                   \
      napi_throw_error((env), "EINVAL", "pty addon: " #call " failed");        \
      return NULL;                                                             \
    }                                                                          \
  } while (0)

/* The errno names the chardev maps to messages (host-ts/errno.ts); others become E<number>. */
static const char *errno_name(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EIO: return "EIO";
    case ENXIO: return "ENXIO";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EEXIST: return "EEXIST";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    case EMFILE: return "EMFILE";
    case ENOTTY: return "ENOTTY";
    case ENOSPC: return "ENOSPC";
    case ENOSYS: return "ENOSYS";
    default: return NULL;
  }
}

/* Throws Error(strerror) with `code` and `errno` set, the shape Node's own fs errors have. */
static napi_value throw_errno(napi_env env, int err, const char *syscall) {
  char fallback_code[16];
  const char *code = errno_name(err);
  if (code == NULL) {
    snprintf(fallback_code, sizeof fallback_code, "E%d", err);
    code = fallback_code;
  }
  napi_value message, code_value, error, errno_value, syscall_value;
  NAPI_CHECK(env, napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &message));
  NAPI_CHECK(env, napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value));
  NAPI_CHECK(env, napi_create_error(env, code_value, message, &error));
  NAPI_CHECK(env, napi_create_int32(env, -err, &errno_value));
  NAPI_CHECK(env, napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value));
  NAPI_CHECK(env, napi_set_named_property(env, error, "errno", errno_value));
  NAPI_CHECK(env, napi_set_named_property(env, error, "syscall", syscall_value));
  napi_throw(env, error);
  return NULL;
}

static napi_value int_value(napi_env env, int number) {
  napi_value value;
  NAPI_CHECK(env, napi_create_int32(env, number, &value));
  return value;
}

/* Reads the integer arguments every call starts with. */
static int int_args(napi_env env, napi_callback_info info, size_t count, int32_t *out, napi_value *rest) {
  napi_value argv[3];
  size_t argc = 3;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < count) return -1;
  for (size_t i = 0; i < count; i++) {
    if (napi_get_value_int32(env, argv[i], &out[i]) != napi_ok) return -1;
  }
  if (rest != NULL) *rest = argc > count ? argv[count] : NULL;
  return 0;
}

static int slave_name(int master, char *buf, size_t size) {
#ifdef __linux__
  int rc = ptsname_r(master, buf, size);
  if (rc != 0) errno = rc; /* glibc returns the error number instead of setting errno */
  return rc == 0 ? 0 : -1;
#else
  /* Elsewhere ptsname_r may be missing; ptsname's static buffer is copied before anything else runs. */
  const char *name = ptsname(master);
  if (name == NULL) return -1;
  if (strlen(name) >= size) {
    errno = ERANGE;
    return -1;
  }
  strcpy(buf, name);
  return 0;
#endif
}

/*
 * Opening the slave once matters besides raw mode and permissions: the kernel reports POLLHUP
 * on the master only after a slave has been opened and closed, and the chardev relies on that
 * to know nobody is connected yet.
 */
static int prepare_slave(const char *path) {
  int slave = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) return -1;
  struct termios attrs;
  /* 0600: only our user may connect, whatever mode the devpts mount hands out. */
  int ok = fchmod(slave, S_IRUSR | S_IWUSR) == 0 && tcgetattr(slave, &attrs) == 0;
  if (ok) {
    /* A console carries bytes, not lines: no echo, no line editing, no CR/LF rewriting. */
    cfmakeraw(&attrs);
    ok = tcsetattr(slave, TCSANOW, &attrs) == 0;
  }
  int saved = errno;
  close(slave);
  errno = saved;
  return ok ? 0 : -1;
}

static napi_value open_pty(napi_env env, napi_callback_info info) {
  (void)info;
  char path[256];
  const char *failed = "posix_openpt";
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0) return throw_errno(env, errno, failed);
  /* The master must neither block Node's thread nor leak into the programs Node spawns. */
  int flags = fcntl(master, F_GETFL);
  if (flags < 0 || fcntl(master, F_SETFL, flags | O_NONBLOCK) < 0 || fcntl(master, F_SETFD, FD_CLOEXEC) < 0) {
    failed = "fcntl";
  } else if (grantpt(master) != 0) {
    failed = "grantpt";
  } else if (unlockpt(master) != 0) {
    failed = "unlockpt";
  } else if (slave_name(master, path, sizeof path) != 0) {
    failed = "ptsname";
  } else if (prepare_slave(path) != 0) {
    failed = "open";
  } else {
    failed = NULL;
  }
  if (failed != NULL) {
    int err = errno;
    close(master);
    return throw_errno(env, err, failed);
  }

  napi_value result, fd_value, path_value;
  NAPI_CHECK(env, napi_create_object(env, &result));
  NAPI_CHECK(env, napi_create_int32(env, master, &fd_value));
  NAPI_CHECK(env, napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &path_value));
  NAPI_CHECK(env, napi_set_named_property(env, result, "fd", fd_value));
  NAPI_CHECK(env, napi_set_named_property(env, result, "slavePath", path_value));
  return result;
}

static napi_value poll_fd(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (int_args(env, info, 1, &fd, NULL) != 0) return throw_errno(env, EINVAL, "poll");
  struct pollfd entry = { .fd = fd, .events = POLLIN | POLLOUT, .revents = 0 };
  int rc;
  do {
    rc = poll(&entry, 1, 0); /* never waits: the JS side polls on a timer */
  } while (rc < 0 && errno == EINTR);
  return int_value(env, rc < 0 ? -errno : entry.revents);
}

static napi_value read_fd(napi_env env, napi_callback_info info) {
  int32_t args[2];
  if (int_args(env, info, 2, args, NULL) != 0 || args[1] < 0) return throw_errno(env, EINVAL, "read");
  size_t max = args[1] > MAX_READ_CHUNK ? MAX_READ_CHUNK : (size_t)args[1];
  /* Per call, not static: worker threads may load this addon and read at the same time. */
  unsigned char *chunk = malloc(max > 0 ? max : 1);
  if (chunk == NULL) return int_value(env, -ENOMEM);
  ssize_t got;
  do {
    got = read(args[0], chunk, max);
  } while (got < 0 && errno == EINTR);
  int err = errno;
  napi_value result = NULL;
  if (got < 0) {
    result = int_value(env, -err);
  } else if (napi_create_buffer_copy(env, (size_t)got, chunk, NULL, &result) != napi_ok) {
    napi_throw_error(env, "ENOMEM", "pty addon: napi_create_buffer_copy failed");
    result = NULL;
  }
  free(chunk);
  return result;
}

static napi_value write_fd(napi_env env, napi_callback_info info) {
  int32_t fd;
  napi_value data_value;
  if (int_args(env, info, 1, &fd, &data_value) != 0 || data_value == NULL) return throw_errno(env, EINVAL, "write");
  bool is_typed_array = false;
  NAPI_CHECK(env, napi_is_typedarray(env, data_value, &is_typed_array));
  if (!is_typed_array) return throw_errno(env, EINVAL, "write");
  napi_typedarray_type type;
  size_t length;
  void *data;
  NAPI_CHECK(env, napi_get_typedarray_info(env, data_value, &type, &length, &data, NULL, NULL));
  if (type != napi_uint8_array) return throw_errno(env, EINVAL, "write");
  ssize_t put;
  do {
    put = write(fd, data, length);
  } while (put < 0 && errno == EINTR);
  return int_value(env, put < 0 ? -errno : (int)put);
}

static napi_value close_fd(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (int_args(env, info, 1, &fd, NULL) != 0) return throw_errno(env, EINVAL, "close");
  close(fd);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  const napi_property_descriptor methods[] = {
    { "openpt", NULL, open_pty, NULL, NULL, NULL, napi_enumerable, NULL },
    { "poll", NULL, poll_fd, NULL, NULL, NULL, napi_enumerable, NULL },
    { "read", NULL, read_fd, NULL, NULL, NULL, napi_enumerable, NULL },
    { "write", NULL, write_fd, NULL, NULL, NULL, napi_enumerable, NULL },
    { "close", NULL, close_fd, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  NAPI_CHECK(env, napi_define_properties(env, exports, sizeof methods / sizeof methods[0], methods));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
