#include "addon.h"

#include "native_api.h"
#include "native_loop.h"

namespace sideloop {

namespace {

// What a blocking wait calls between slices, to learn whether it must end.
// It must be a function written in JS: once a worker is being terminated,
// Node refuses any call; and V8 acts on a pending TerminateExecution (a vm
// script's timeout, the REPL's Ctrl+C) at the entry of a JS function, which
// a C++ function like the one made below does not have.
Napi::Function MakeJsProbe(Napi::Env env) {
  napi_value source;
  napi_value probe;
  if (napi_create_string_utf8(env, "(function sideloopProbe() {})", NAPI_AUTO_LENGTH, &source) == napi_ok &&
      napi_run_script(env, source, &probe) == napi_ok) {
    return Napi::Function(env, probe);
  }
  // Only worker termination is then noticed: better than no probe.
  if (env.IsExceptionPending()) env.GetAndClearPendingException();
  return Napi::Function::New(env, [](const Napi::CallbackInfo&) {});
}

}  // namespace

Addon::Addon(Napi::Env env) {
  native_loop_class = Napi::Persistent(NativeLoop::DefineClass(env));
  js_probe = Napi::Persistent(MakeJsProbe(env));
  Napi::Value queue = env.Global().Get("queueMicrotask");
  if (queue.IsFunction()) queue_microtask = Napi::Persistent(queue.As<Napi::Function>());
}

}  // namespace sideloop

static Napi::Object InitSideloop(Napi::Env env, Napi::Object exports) {
  using sideloop::Addon;
  auto* addon = new Addon(env);
  env.SetInstanceData(addon);  // freed by Node when the environment goes away
  exports.Set("NativeLoop", addon->native_loop_class.Value());
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  exports.Set("nativeApi", sideloop::NativeApiExternal(env));
  return exports;
}

NODE_API_MODULE(sideloop, InitSideloop)
