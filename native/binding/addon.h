// Per-environment state of the addon. Node may load sideloop in the main
// thread and in any number of worker threads at once; each gets its own
// Addon (napi instance data), and nothing is shared between them but the
// process-wide exit guard of the core.
#ifndef SIDELOOP_BINDING_ADDON_H_
#define SIDELOOP_BINDING_ADDON_H_

#include <napi.h>

namespace sideloop {

class Addon {
 public:
  explicit Addon(Napi::Env env);

  // The JS class of NativeLoop in this environment.
  Napi::FunctionReference native_loop_class;
  // An empty JS function: calling it tells whether this environment can
  // still run JS (see MakeJsProbe in addon.cc).
  Napi::FunctionReference js_probe;
  // queueMicrotask as it was when the addon loaded, for exceptions raised
  // later (extension_task.cc): user code that replaces it cannot lose them.
  Napi::FunctionReference queue_microtask;
};

}  // namespace sideloop

#endif  // SIDELOOP_BINDING_ADDON_H_
