// `chardev-hub --help`: every option, every chardev kind with its keys, and examples. Tests
// check that every kind the registry knows is named here (tests/cli.test.ts) and every key of
// every kind's option schema (tests/option_schema.test.ts); the prose stays written by hand
// because it groups keys and says what they are for better than one line per key could.

/** The help text, for a program called `program`. */
export function helpText(program = "chardev-hub"): string {
  return `Usage:
  ${program} -chardev SPEC [-chardev SPEC ...] -frontend DEVICE_ID,chardev=HUB_ID [options]
  ${program} -chardev DEVICE_SPEC -serial SPEC [-serial SPEC ...] [options]
  ${program} -chardev SPEC ... -console NAME,device=DEVICE_ID[,...] [-console ...] [options]
  ${program} -readconfig FILE [-chardev SPEC ...] [-console ...] [options]
  ${program} [--default] [-qmp ADDRESS]
  ${program} list | who NAME | attach NAME | tail NAME [--control PATH]   (see ${program} attach --help)

Shares one console (a shell, a VM's serial port, a serial cable) among many clients: a
terminal, sockets, a pty, browser tabs, log files. QEMU 10.0's hub chardev, standalone.
Chardevs are written exactly as QEMU's -chardev takes them; the device is the chardev that
plays the guest and the hub is what it talks to: what the device writes goes to every open
backend of the hub, and what any backend types goes to the device.

Options (one dash or two; -opt=VALUE works too):
  -chardev SPEC        add a chardev: KIND,id=ID[,key=value...] (kinds below); ",," is a
                       literal comma. A hub names chardevs defined before it.
  -object tls-creds-x509,id=ID,endpoint=server|client,dir=DIR[,verify-peer=on|off]
                       TLS credentials, as QEMU's: DIR holds ca-cert.pem and
                       server-cert.pem + server-key.pem (endpoint=server) or, optionally,
                       client-cert.pem + client-key.pem (endpoint=client). verify-peer=on
                       (the default) makes a server require client certificates signed
                       by the CA, and a client check the server's. Chardevs use it with
                       tls-creds=ID. Created before any -chardev.
  -frontend DEVICE_ID,chardev=HUB_ID
                       bridge chardev DEVICE_ID (the device) to HUB_ID (usually a hub).
                       Writes both ways honour backpressure: nothing is lost or repeated.
  -serial SPEC         QEMU's legacy form, repeatable: without -frontend the -serial
                       chardevs (serial0, serial1, ...) become one hub (id serial-hub)
                       and the one -chardev no -serial names is the device bridged to it.
                       SPEC as QEMU's: null | none (skipped) | vc[:WxH|:COLSCxROWSC] (a web
                       terminal) | pty | pty:LINK | stdio | file:PATH | pipe:PATH |
                       tcp:[HOST]:PORT[,OPTS] | telnet:[HOST]:PORT[,OPTS] |
                       websocket:[HOST]:PORT[,OPTS] | unix:PATH[,OPTS] |
                       udp:[HOST]:PORT[@[LOCALADDR]:LOCALPORT] | /dev/TTY |
                       mon:SPEC (a mux in front; our monitor is QMP, not HMP: mon: adds
                       no monitor) | chardev:ID (a -chardev of that id). OPTS are -chardev
                       keys (server,nowait works). e.g.
                         -chardev spawn,id=sh,cmd=bash -serial tcp::4444,server,nowait
                         -serial file:console.log
  -console NAME,device=DEVICE_ID[,ring=BYTES][,log=FILE][,replay=BYTES|screen][,HUB KEYS]
                       a named console, repeatable: one process serves many. It makes a
                       hub with id NAME (ring=1M unless given; any other hub key passes
                       through, e.g. chardevs.0=sock,policy.0=block), a file chardev
                       NAME-log for log=FILE (policy block: every byte), and bridges
                       DEVICE_ID to it. Its socket, pty, stdio and web chardevs get
                       policy.N=drop and replay.N= the console's replay= (default
                       screen: a late client gets the screen as it stands) unless
                       their own keys say otherwise; replay= is also what attach
                       replays by default. A device gone for good (a program that
                       exited) closes its console; the others go on. With --qemu-compat
                       the hub is QEMU's (no ring unless ring=, no defaults added).
  -readconfig FILE     chardevs and consoles from FILE in QEMU's -readconfig syntax:
                         [chardev "ID"]           [console "NAME"]
                           backend = "socket"       device = "ID"
                           path = "/run/c.sock"     chardevs.0 = "c1"
                           server = "on"            log = "/var/log/c.log"
                       (# comments; values in double quotes; a server socket there does
                       not wait for its first client). Mistakes are reported as
                       FILE:LINE: .... SIGHUP reads FILE again: consoles gone from it are
                       removed (with the chardevs only it defined), new ones added, the
                       unchanged left streaming; a file with a mistake changes nothing.
  -qmp ADDRESS         a QMP control socket, as QEMU's: unix:PATH,server=on,wait=off or
                       tcp:HOST:PORT,server=on,wait=off (only our own uid may connect
                       over TCP; access=any lets anyone). Commands: qmp_capabilities,
                       chardev-add, chardev-remove, chardev-change, query-chardev,
                       query-chardev-backends, chardev-reopen-logs (as SIGHUP),
                       ringbuf-write, ringbuf-read,
                       chardev-send-break, object-add, object-del, query-commands,
                       query-version, query-status, quit (exits 0), and ours:
                       hub-attach, hub-detach, query-hub (backends of a running hub),
                       hub-history {id, from, size (up to 1 MiB), format: base64 (the
                       default) | utf8} (output by offset: keep-head and the ring,
                       with the ranges gone),
                       hub-events (our events: backends attached, gaps, evictions,
                       errors, the device closed/back; off until a client asks).
  -control PATH        the control socket (a UNIX socket, mode 0600: only our user) that
                       \`${program} list | who | attach | tail\` talk to (docs/control.md).
                       The default setup has run/chardev-hub.sock; otherwise none unless given.
  -control tcp:HOST:PORT[,tls-creds=ID]
                       the control socket on TCP, for remote attach: with tls-creds=ID (an
                       -object tls-creds-x509 with endpoint=server; verify-peer=on asks
                       clients for a certificate from its CA) on any address; without,
                       on a loopback address only, serving our own user only. Port 0
                       takes a free port (printed: "control socket on tcp:HOST:PORT").
  -daemonize           run in the background (QEMU's): the command returns 0 once the
                       background copy is set up and every listener listens, or prints
                       why it failed and exits 1. It keeps this working directory
                       (relative paths keep working); no stdio chardev (QEMU's
                       "cannot use stdio with -daemonize"); its output goes to -D FILE,
                       else /dev/null (docs/service.md)
  -pidfile FILE        our pid and a newline in FILE (mode 0644), written once set up and
                       removed on the way out; a FILE naming a process that still runs
                       makes us refuse to start, a stale one is replaced
  -D FILE              our messages go to FILE (appended, created 0600) instead of stderr
  systemd: with $NOTIFY_SOCKET set (Type=notify), READY=1 goes out once every listener
                       listens and STOPPING=1 on the way out, through systemd-notify
                       (the unit needs NotifyAccess=all unless it runs as root)
  --qemu-compat        QEMU 10.0's rules exactly: a hub takes at most 4 chardevs
                       (chardevs.0..3) and no mux or hub under a hub. Off by default.
  --default            the default setup (also what no -chardev means), see below.
  -h, --help           this text.
  -V, --version        the version.

Chardev kinds and their keys (every kind also takes logfile=FILE and logappend=on|off;
timestamp=on (each line stamped in UTC), logfilemax=BYTES and rotate=N (FILE.1 ... FILE.N) for
its log, and file's own output (docs/logs.md); and mux=on, which puts a mux in front of it:
C-a h lists its keys, C-a x ends ${program}):
  hub        chardevs.N=ID      the backends, N = 0, 1, ... (0..3 with --qemu-compat)
             ring=BYTES         0: QEMU's unbuffered hub (the slowest backend sets the pace);
                                a power of two up to 512M: a broadcast ring each backend
                                drains at its own pace (then policy.N=block|drop|evict,
                                lag-limit.N=BYTES, stall-ms.N=MS, replay.N=BYTES apply per
                                backend; replay.N=screen (screen:LINES) sends the screen as
                                it stands, then the live stream: docs/hub.md)
             keep-head=BYTES    with a ring, also keep the first BYTES of output (the boot
                                log, up to 512M); QMP hub-history reads both by offset
             size=latest|smallest|largest|manual, cols=N, rows=N
                                the device's window size, agreed among read-write backends
                                (tmux's window-size; 80x24 until one tells; manual: cols x rows)
             open=any|all|always|primary, primary=ID
                                when the device sees OPENED/CLOSED (any: QEMU's)
             input=shared|exclusive, input-idle-ms=MS
                                who may type; mode.N=rw|ro per backend
  ringbuf    size=BYTES         (alias memory) a ring in memory, a power of two up to 512M,
                                64K default;
                                read it with QMP ringbuf-read
  null                          takes everything, gives nothing
  file       path=FILE          writes to FILE (truncated, or append=on); input-path=FILE
                                reads input from FILE
             mode=0640          permissions of a FILE it creates (octal, less the umask;
                                0600 by default); an existing FILE keeps its own
             log-events=on|off  as a hub backend, lines for what happens on the hub:
                                [-- uid 1001 attached ro --], [-- evicted: stalled 5000 ms --]
  asciicast  path=FILE          records the output as asciicast v2 (asciinema play FILE)
             input=on|off       as a hub backend, also the input the hub takes ("i" events)
             cols=N,rows=N      the header's size until the hub agrees on one (then "r")
             title=TEXT         the header's title
  pipe       path=PATH          FIFOs PATH.in and PATH.out, else PATH both ways
  stdio      signal=on|off      this terminal (raw); signal=on (default): Ctrl-C ends ${program}
  pty        path=LINK          a new pseudo-terminal; LINK becomes a symlink to it
                                (tio LINK, screen LINK, socat -,raw,echo=0 LINK); a LINK
                                to a live terminal is refused, a dangling one replaced
  socket     path=PATH          a UNIX socket (created mode 0600; a PATH something answers
                                on is refused, a stale one replaced; at most 107 bytes), or
             host=HOST,port=PORT
                                TCP (a server binds 127.0.0.1 unless host= says otherwise)
             server=on|off, wait=on|off, reconnect-ms=MS, nodelay=on|off (or delay=off),
             high-water-mark=BYTES (output held for a slow client before EAGAIN, 64K)
             tls-creds=ID       TLS over TCP with the -object of that id (server
                                credentials for server=on, client ones for server=off)
             access=user|any    a TCP server serves only connections our own uid made
                                on this machine (user, the default; Linux), or anyone
             fd=N               a socket already open: listening (server=on) or connected
                                (server=on absent); systemd socket activation: a server whose
                                id is a LISTEN_FDNAMES name serves on that socket
             telnet=on|off      a server speaks telnet: QEMU's negotiation on connect (no
                                double echo, one Enter), commands taken out of the input,
                                IAC BREAK a BREAK (tn3270=on|off: RFC 1576's, for 3270)
             websocket=on|off   a server takes a WebSocket upgrade (subprotocol binary, as
                                QEMU), then binary frames both ways
             max-clients=N      a server serves N connections at once (1: QEMU's one at a
                                time, the default; at most 65535), each a backend ID#1,
                                ID#2, ... of the socket's hub with its policy.N etc.; the
                                next is told the socket is full and closed
  udp        host=HOST,port=PORT
                                each write one datagram to HOST:PORT (HOST: localhost);
                                datagrams from there are input. localaddr=ADDR,
                                localport=PORT bind our end; ipv4=on|ipv6=on
  nats       server=nats://HOST:PORT,console=NAME
                                a console on NATS JetStream (docs/nats.md); several servers
                                as server=nats://A:1,,nats://B:2 (or ; or spaces)
             role=console|viewer
                                console (a hub backend): output to console.NAME.out with
                                byte offsets, typing from console.NAME.in (input=off
                                ignores it; screen=off keeps no screen for from=screen;
                                device=NAME on its card); viewer (a device): follows that
                                output from=start|new|OFFSET|screen (the console's screen,
                                then from there), a hole is [-- N bytes missed --]
             stream=NAME        the stream (CONSOLES), created if missing with
                                max-bytes=BYTES, max-age=SECONDS, replicas=N
             creds=FILE | token=T | user=U,password=P; tls-creds=ID (endpoint=client)
  web        host=ADDR,port=PORT
                                a terminal in the browser (xterm.js) at http://ADDR:PORT/;
                                port=0 picks a free port. queue-limit=BYTES per tab (1M).
                                A tab's terminal size is passed on to a spawn device.
             token=SECRET|token-file=PATH
                                the secret a tab must show (?token=, a Bearer header or the
                                page's cookie); default: 256 random bits, printed in the URL
             ro-token=SECRET|ro-token-file=PATH
                                the secret of view-only tabs (no typing, no resizing);
                                default: random, printed as a second, view-only URL
             auth=token|none    none serves anyone who reaches the address (a warning says so)
             max-clients=N      tabs at once (64, at most 65535); the next gets HTTP 503.
                                Above 1, a ring hub takes each tab as a backend of its
                                own (ID#N) with the hub's policy.N, replay.N, ... for ID
             replay=BYTES|screen
                                what a new tab gets first when the hub's replay.N for ID
                                is not given: recent output, or the screen as it stands
             access=user|any    on loopback, only our own uid's connections (user, Linux)
             tls-creds=ID       HTTPS and WSS with the -object of that id (endpoint=server)
  spawn      cmd=PROGRAM        runs PROGRAM on a new pty (its controlling terminal):
             args.N=ARG         its arguments, N = 0, 1, ...
             cols=N,rows=N      its window size (80x24); follows a web tab's size and,
                                with a stdio chardev, this terminal's
                                OPENED when it starts, CLOSED when it exits; ${program}
                                then exits with its status (a -console's device: its
                                console closes, the run goes on)
  serial     path=DEVICE        (alias tty) a host tty, e.g. /dev/ttyUSB0, set raw, non-blocking
             speed=BPS          line speed, e.g. 115200 (default: left as it is)
  http       url=http://HOST/PATH
                                a log sink (docs/http.md): the output in batches of whole
                                lines, each a request body; a 429, 5xx or network error is
                                sent again, any other 4xx fails the sink. method=POST|PUT|PATCH,
                                headers.N=Name: value, content-type=TYPE (text/plain)
             batch-bytes=BYTES,batch-ms=MS
                                a batch is sent at 64K or 200 ms after its first byte
             concurrency=N      requests in flight (1); past them writes answer EAGAIN, so
                                the hub's policy.N applies; a drop gap is told to the
                                receiver in a Chardev-Hub-Gap: BYTES header
             retry-ms=MS,retry-max=N
                                the first backoff (500, doubled up to 30 s; Retry-After
                                wins) and the retries of one batch before it fails (10)
  webstream  high-water-mark=BYTES
                                a pair of Web Streams; for programs using the library, not
                                useful from the command line
  mux        chardev=ID         what mux=on makes (ID-base behind mux ID); rarely written by hand

Limits: every MS option (stall-ms.N, input-idle-ms, reconnect-ms) is at most 2147483647
(2^31-1, about 24.8 days; reconnect= at most 2147483 s); ring= and ringbuf size= at most 512M
(the rings of one run share the core's 4G); queue-limit= and high-water-mark= at most 1G.
A value past a limit is refused, naming its key; error messages quote 256 characters of input.

Default setup (no -chardev, or --default): your $SHELL (else /bin/sh) on a new pty, shared by
this terminal (when stdin is one; Ctrl-C here ends ${program}), a UNIX socket run/hub.sock,
a pty link run/pty, a browser terminal on http://127.0.0.1:8080/ (another free port if that
one is taken) and a log run/console.log, all under ./run/. Its hub has a 1M ring; the
terminal, socket, pty link and browser tabs are on policy drop with replay=screen (a client
that stops reading falls behind alone; a late one gets the screen), the log on block.
It prints how to attach:
  ${program} attach shell        (Ctrl-] . detaches; control socket run/chardev-hub.sock)
  socat - UNIX-CONNECT:run/hub.sock
  tio run/pty
  http://127.0.0.1:8080/?token=SECRET     (the secret is new each run)
  http://127.0.0.1:8080/?token=SECRET2    (view only)
Leaving the shell (exit) ends ${program}, as does Ctrl-C, SIGINT or SIGTERM: sockets, links
and the terminal's mode are cleaned up. SIGHUP reopens every log instead (logrotate's
postrotate kill -HUP), and with -readconfig reads the file again.

Client commands (the same binary, talking to a run's -control socket; default
run/chardev-hub.sock, --control PATH for another, --control tcp:HOST:PORT
--tls-creds DIR for a remote one over TLS; each has --help):
  list [--json]        the consoles: device state, clients (rw/ro), bytes, lag
  who NAME             who is attached to console NAME (uid, mode, since when)
  attach NAME [--ro] [--replay BYTES|screen] [--escape CHAR]
                       this terminal on console NAME (raw mode, window size forwarded);
                       after Ctrl-] (--escape ^X changes it): . detach, ? help, w who,
                       r replay the last lines, b BREAK, f force read-write (take the
                       floor under input=exclusive), s read-only
  tail NAME [--replay BYTES]
                       the console's output on stdout until it ends or SIGINT (scripts)
A console is the default setup's \`shell\`, a -frontend run's device id, or a -console NAME.
On NATS (a console published by a \`nats\` chardev, docs/nats.md) the same commands take
nats://HOST:PORT (list: the consoles' KV cards) or nats://HOST:PORT/NAME (attach, tail),
with --creds FILE, --token TOKEN or --user USER --password PASSWORD, --tls-creds DIR
(TLS with a client certificate), --stream NAME; attach and tail --replay screen too.

Examples:
  # Two consoles in one process, each with its socket and the first with a log
  ${program} -chardev spawn,id=sh1,cmd=sh -chardev spawn,id=sh2,cmd=sh \\
    -chardev socket,id=c1,path=/tmp/one.sock,server=on,wait=off \\
    -chardev socket,id=c2,path=/tmp/two.sock,server=on,wait=off \\
    -console one,device=sh1,chardevs.0=c1,log=one.log -console two,device=sh2,chardevs.0=c2

  # Consoles from a file (examples/consoles.ini); kill -HUP adds and removes consoles
  ${program} -readconfig examples/consoles.ini -control /run/chardev-hub.sock

  # A shell shared by two socket clients and a log
  ${program} -chardev spawn,id=sh,cmd=sh \\
    -chardev socket,id=s0,path=/tmp/a.sock,server=on,wait=off \\
    -chardev socket,id=s1,path=/tmp/b.sock,server=on,wait=off \\
    -chardev file,id=log,path=console.log \\
    -chardev hub,id=hub0,chardevs.0=s0,chardevs.1=s1,chardevs.2=log \\
    -frontend sh,chardev=hub0

  # A QEMU guest's serial port (-serial unix:/tmp/ttyS0.sock,server=on,wait=off) in this
  # terminal (C-a x leaves), a browser tab and a log
  ${program} -chardev socket,id=guest,path=/tmp/ttyS0.sock \\
    -chardev stdio,mux=on,id=char0 -chardev web,id=web0,port=8080 \\
    -chardev file,path=console.log,id=clog \\
    -chardev hub,id=hub0,chardevs.0=char0,chardevs.1=web0,chardevs.2=clog \\
    -frontend guest,chardev=hub0

  # A console shared across the network safely: TLS, and only clients with a certificate
  # signed by the CA get in (socat - OPENSSL:HOST:4444,cafile=ca-cert.pem,cert=...,key=...)
  ${program} -object tls-creds-x509,id=tls0,endpoint=server,dir=/etc/pki/console,verify-peer=on \\
    -chardev spawn,id=sh,cmd=sh \\
    -chardev socket,id=net0,host=0.0.0.0,port=4444,server=on,wait=off,tls-creds=tls0 \\
    -chardev hub,id=hub0,chardevs.0=net0 -frontend sh,chardev=hub0

  # A USB serial console behind a pty for tio and a QMP socket to add more later
  ${program} -chardev serial,id=board,path=/dev/ttyUSB0,speed=115200 \\
    -chardev pty,id=pty0,path=/tmp/board -chardev hub,id=hub0,chardevs.0=pty0 \\
    -frontend board,chardev=hub0 -qmp unix:/tmp/qmp.sock,server=on,wait=off

Exit status: the spawn device's status once it exits; 0 after Ctrl-C, SIGINT, SIGTERM or
C-a x; 1 when a chardev cannot be set up (QEMU's message is printed); 2 for a command-line
mistake; 3 when any other device closes for good (a socket client without reconnect-ms, a
serial port unplugged), after "[-- device closed --]" went to every backend and the logs.
`;
}
