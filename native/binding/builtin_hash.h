// The built-in hash task, written on the public extension interface
// (include/sideloop.h) exactly as another addon would write one: it is the
// proof, inside sideloop itself, that the public interface carries a real
// built-in (the other built-ins use the internal core/task.h it adapts to).
#ifndef SIDELOOP_BINDING_BUILTIN_HASH_H_
#define SIDELOOP_BINDING_BUILTIN_HASH_H_

#include <cstddef>
#include <cstdint>

#include <node_api.h>

#include "../core/task.h"

namespace sideloop {

// The task hashing `size` bytes at `data` (borrowed: the caller keeps them
// alive until the task is taken back) with algorithm `index` of
// src/tasks.ts HASH_ALGORITHMS; nullptr for an unknown index. `env` is
// sideloop's: the task is an extension task of sideloop's own.
Task* NewHashTask(napi_env env, int index, const uint8_t* data, size_t size);

}  // namespace sideloop

#endif  // SIDELOOP_BINDING_BUILTIN_HASH_H_
