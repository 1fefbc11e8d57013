/* The C anchor of the in-memory fan-out (bench/_memory.ts), written for this benchmark: one
 * producer, N sinks, every sink copying every byte of the stream into a buffer of its own.
 *
 *   fanout_memory CHUNK SINKS BYTES
 *
 * The stream is bench/_stream.ts's: 64-byte lines of letters from the same 32-bit LCG,
 * repeating every PERIOD (48 KiB) bytes, written in CHUNK-byte writes (CHUNK divides PERIOD).
 * Each sink's buffer is PERIOD bytes, wrapping, as the JavaScript sinks' are. After the run
 * every sink must have counted BYTES and hold the stream's first min(BYTES, PERIOD) bytes,
 * else it exits 1. Prints one JSON line: the nanoseconds of the copying loop alone. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PERIOD (3 * 16384)
#define LINE 64

struct sink { unsigned char *buf; size_t at; uint64_t count; };

/* The sink's write: copy the chunk in and count it. */
static inline void sink_write(struct sink *s, const unsigned char *data, size_t length) {
    memcpy(s->buf + s->at, data, length);
    s->at += length;
    if (s->at == PERIOD) s->at = 0;
    s->count += length;
}

/* Writes `bytes` of the stream in `chunk`-byte writes, each to every sink in turn. */
static inline __attribute__((always_inline)) void fan_out(const unsigned char *pattern, struct sink *all, size_t sinks, uint64_t bytes, size_t chunk) {
    size_t k = 0;
    for (uint64_t written = 0; written < bytes; written += chunk) {
        const unsigned char *data = pattern + k;
        k += chunk;
        if (k == PERIOD) k = 0;
        for (size_t s = 0; s < sinks; s++) sink_write(&all[s], data, chunk);
    }
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: fanout_memory CHUNK SINKS BYTES\n"); return 2; }
    size_t chunk = strtoul(argv[1], NULL, 10), sinks = strtoul(argv[2], NULL, 10);
    uint64_t bytes = strtoull(argv[3], NULL, 10);
    if (chunk == 0 || PERIOD % chunk != 0 || sinks == 0 || bytes % chunk != 0) { fprintf(stderr, "fanout_memory: bad arguments\n"); return 2; }

    static unsigned char pattern[PERIOD];
    uint32_t state = 0x2545f491;
    for (int i = 0; i < PERIOD; i++) {
        state = state * 1103515245u + 12345u;
        pattern[i] = i % LINE == LINE - 1 ? 0x0a : (unsigned char)(0x61 + (state >> 16) % 26);
    }
    struct sink *all = calloc(sinks, sizeof *all);
    for (size_t s = 0; s < sinks; s++) {
        all[s].buf = malloc(PERIOD);
        memset(all[s].buf, 0xee, PERIOD); /* poisoned, as bench/_stream.ts's sinks */
    }

    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    /* The benchmark's three sizes as constants, so the compiler copies them inline, as a C
     * fan-out written for one record size would; any other size takes the general loop. */
    switch (chunk) {
    case 64: fan_out(pattern, all, sinks, bytes, 64); break;
    case 1024: fan_out(pattern, all, sinks, bytes, 1024); break;
    case 16384: fan_out(pattern, all, sinks, bytes, 16384); break;
    default: fan_out(pattern, all, sinks, bytes, chunk); break;
    }
    clock_gettime(CLOCK_MONOTONIC, &end);

    size_t span = bytes < PERIOD ? (size_t)bytes : PERIOD;
    for (size_t s = 0; s < sinks; s++) {
        if (all[s].count != bytes || memcmp(all[s].buf, pattern, span) != 0) {
            fprintf(stderr, "fanout_memory: sink %zu got %llu bytes or wrong ones\n", s, (unsigned long long)all[s].count);
            return 1;
        }
    }
    long long ns = (end.tv_sec - start.tv_sec) * 1000000000LL + (end.tv_nsec - start.tv_nsec);
    printf("{\"ns\":%lld}\n", ns);
    return 0;
}
