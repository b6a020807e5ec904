// The function table of include/sideloop.h, as this binary implements it,
// and the value JS hands to extensions (EventLoop[Symbol.for(
// SIDELOOP_API_SYMBOL)]): an external of the table, tagged so that
// sideloop_get_api() can check it. The table is static, so each copy of
// sideloop in a process has its own, and an extension always receives the
// one of the copy that owns its loop.
#ifndef SIDELOOP_BINDING_NATIVE_API_H_
#define SIDELOOP_BINDING_NATIVE_API_H_

#include <napi.h>

namespace sideloop {

Napi::Value NativeApiExternal(Napi::Env env);

}  // namespace sideloop

struct sideloop_api;

namespace sideloop {

// This addon's own table: what the built-ins written on the public
// interface (builtin_hash.cc) call, as an extension would.
const sideloop_api* OwnNativeApi();

}  // namespace sideloop

#endif  // SIDELOOP_BINDING_NATIVE_API_H_
