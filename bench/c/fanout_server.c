/* The C anchor of the command's socket fan-out (bench/_command_socket.ts), written for this
 * benchmark. It does what `chardev-hub` does there with a device socket and a ring hub of
 * block-policy socket backends: connect to the device's UNIX socket (as `socket,server=off`),
 * serve one client on each client socket path (as `socket,server=on`), and write every byte
 * the device sends to every client, in order, nothing lost.
 *
 *   fanout_server DEVICE_SOCKET CLIENT_SOCKET...
 *
 * One epoll loop, every descriptor nonblocking. The bytes pass through a 1 MiB ring (the
 * hub's ring size): `head` counts bytes read from the device, each client's `sent` the bytes
 * written to it. The device is read only while the ring has room, that is while the slowest
 * client is less than a ring behind: the slowest client sets the pace (block semantics). It
 * exits 0 once the device closed and every client has everything, 1 on an error. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <fcntl.h>

#define RING (1u << 20)
#define MAX_CLIENTS 1024

static unsigned char ring[RING];
static uint64_t head;            /* bytes read from the device so far */
static int clients[MAX_CLIENTS]; /* -1 once a client is gone */
static uint64_t sent[MAX_CLIENTS];
static int waiting[MAX_CLIENTS]; /* registered for EPOLLOUT after EAGAIN */
static int count, epoll_fd, device, device_watched = 1, device_done;

static void fail(const char *what) { perror(what); _exit(1); }

static struct sockaddr_un address(const char *path) {
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sun.sun_path) { fprintf(stderr, "fanout_server: path too long: %s\n", path); _exit(1); }
    strcpy(sun.sun_path, path);
    return sun;
}

static void watch(int fd, int op, uint32_t events, int tag) {
    struct epoll_event ev = { .events = events, .data.u32 = (uint32_t)tag };
    if (epoll_ctl(epoll_fd, op, fd, &ev) < 0) fail("epoll_ctl");
}

/* Writes what client i has not had yet, until it is caught up or its socket is full. */
static void flush(int i) {
    while (clients[i] >= 0 && sent[i] < head) {
        size_t at = sent[i] % RING, run = head - sent[i];
        if (run > RING - at) run = RING - at;
        ssize_t n = write(clients[i], ring + at, run);
        if (n > 0) { sent[i] += (uint64_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            if (!waiting[i]) { watch(clients[i], EPOLL_CTL_MOD, EPOLLOUT, i); waiting[i] = 1; }
            return;
        }
        close(clients[i]); /* the client went away: it no longer holds the others back */
        clients[i] = -1;
    }
    if (clients[i] >= 0 && waiting[i]) { watch(clients[i], EPOLL_CTL_MOD, 0, i); waiting[i] = 0; }
}

static uint64_t slowest(void) {
    uint64_t least = head;
    for (int i = 0; i < count; i++) if (clients[i] >= 0 && sent[i] < least) least = sent[i];
    return least;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc - 2 > MAX_CLIENTS) { fprintf(stderr, "usage: fanout_server DEVICE_SOCKET CLIENT_SOCKET...\n"); return 2; }
    signal(SIGPIPE, SIG_IGN);
    count = argc - 2;
    int listeners[MAX_CLIENTS];
    for (int i = 0; i < count; i++) {
        struct sockaddr_un sun = address(argv[i + 2]);
        unlink(sun.sun_path);
        if ((listeners[i] = socket(AF_UNIX, SOCK_STREAM, 0)) < 0) fail("socket");
        if (bind(listeners[i], (struct sockaddr *)&sun, sizeof sun) < 0 || listen(listeners[i], 1) < 0) fail("bind/listen");
    }
    /* Every client first (their connections wait in the backlog), then the device. */
    for (int i = 0; i < count; i++) {
        if ((clients[i] = accept(listeners[i], NULL, NULL)) < 0) fail("accept");
        close(listeners[i]);
        fcntl(clients[i], F_SETFL, O_NONBLOCK);
    }
    struct sockaddr_un dev = address(argv[1]);
    if ((device = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 || connect(device, (struct sockaddr *)&dev, sizeof dev) < 0) fail("connect");
    fcntl(device, F_SETFL, O_NONBLOCK);
    if ((epoll_fd = epoll_create1(0)) < 0) fail("epoll_create1");
    watch(device, EPOLL_CTL_ADD, EPOLLIN, -1);
    for (int i = 0; i < count; i++) watch(clients[i], EPOLL_CTL_ADD, 0, i);

    struct epoll_event events[64];
    for (;;) {
        uint64_t least = slowest();
        if (device_done && least == head) return 0;
        /* Read the device only while the ring has room: the slowest client sets the pace. */
        int want = !device_done && head - least < RING;
        if (want != device_watched) { watch(device, EPOLL_CTL_MOD, want ? EPOLLIN : 0, -1); device_watched = want; }
        int ready = epoll_wait(epoll_fd, events, 64, -1);
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) fail("epoll_wait");
        for (int e = 0; e < ready; e++) {
            int tag = (int)events[e].data.u32;
            if (tag >= 0) { flush(tag); continue; }
            size_t at = head % RING, room = RING - (head - slowest());
            if (room > RING - at) room = RING - at;
            if (room == 0) continue; /* an event from before the ring filled up */
            ssize_t n = read(device, ring + at, room);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (n <= 0) { device_done = 1; watch(device, EPOLL_CTL_DEL, 0, -1); device_watched = 0; continue; }
            head += (uint64_t)n;
            for (int i = 0; i < count; i++) if (!waiting[i]) flush(i);
        }
    }
}
