#include "addon.h"

#include "native_api.h"
#include "native_loop.h"

namespace sideloop {

Addon::Addon(Napi::Env env) {
  native_loop_class = Napi::Persistent(NativeLoop::DefineClass(env));
  noop = Napi::Persistent(Napi::Function::New(env, [](const Napi::CallbackInfo&) {}));
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
