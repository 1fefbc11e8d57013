// Types of fanout.js (plain JavaScript, so workerd loads it as is).

/** What one sink's consumer read. */
export interface SinkReport {
  length: number;
  /** Lower-case hex SHA-256 of everything it read. */
  sha256: string;
  /** How many reads it took. */
  reads: number;
}

export interface FanOutReport {
  /** Chunks read from the body. */
  chunks: number;
  /** Bytes written through the hub. */
  sent: number;
  /** Frontend writes that met EAGAIN and waited for the watch. */
  eagain: number;
  sinks: SinkReport[];
}

export const SINK_HIGH_WATER_MARK: number;
export const EDGE_BODY: { seed: number; sizes: number[] };
export function sha256(bytes: Uint8Array): Promise<string>;
export function testChunks(seed: number, sizes: number[]): Uint8Array[];
export function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array>;
export function fanOut(body: ReadableStream<Uint8Array>, options?: { sinks?: number; wasmModule?: WebAssembly.Module }): Promise<FanOutReport>;
