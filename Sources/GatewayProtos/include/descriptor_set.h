#ifndef GATEWAY_DESCRIPTOR_SET_H
#define GATEWAY_DESCRIPTOR_SET_H
// The serialized google.protobuf.FileDescriptorSet of every service this project serves,
// written by tools/generate-protos for server reflection.
extern const unsigned char gateway_descriptor_set[];
extern const unsigned long gateway_descriptor_set_size;

// Swift does not import arrays of unknown size; it reads the set through this.
static inline const unsigned char *gateway_descriptor_set_ptr(void) { return gateway_descriptor_set; }
#endif
