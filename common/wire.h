/* protobuf-c pack/unpack of the vscale messages, with bounds. The only user of generated code.
 *
 * Encoders write into caller storage and return the packed length or -EMSGSIZE. Decoders take
 * untrusted bytes: anything malformed, non-finite or out of range is -EBADMSG, and *ret is
 * written only on success. */
#ifndef VSCALE_WIRE_H
#define VSCALE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "sample.h"

int wire_encode_hello(const struct hello *h, uint8_t *buf, size_t cap);
int wire_decode_hello(const uint8_t *buf, size_t len, struct hello *ret);

int wire_encode_sample(const struct sample *s, uint8_t *buf, size_t cap);
int wire_decode_sample(const uint8_t *buf, size_t len, struct sample *ret);

int wire_encode_request(const struct request *r, uint8_t *buf, size_t cap);
int wire_decode_request(const uint8_t *buf, size_t len, struct request *ret);

int wire_encode_reply(const struct reply *r, uint8_t *buf, size_t cap);
int wire_decode_reply(const uint8_t *buf, size_t len, struct reply *ret);

#endif
