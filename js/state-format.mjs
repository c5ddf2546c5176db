// Saved session states (see docs/state-format.md): a 32-byte header, then the state's
// floats (little-endian float32) in the core's layout (docs/computation.md#the-state).
//   0  8 bytes  magic "RWKVST\0\1"
//   8  uint32   format version (1)
//  12  uint32   n_layer
//  16  uint32   n_embd
//  20  uint32   n_head
//  24  uint32   head_size
//  28  uint32   number of floats that follow
export const STATE_MAGIC = 'RWKVST\u0000\u0001';
export const STATE_VERSION = 1;
export const STATE_HEADER_BYTES = 32;
