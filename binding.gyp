{
  "targets": [
    {
      "target_name": "sideloop",
      "sources": [
        "native/core/task.cc",
        "native/core/loop_thread.cc",
        "native/core/exit_guard.cc",
        "native/core/sleep_task.cc",
        "native/core/byte_buffer.cc",
        "native/core/task_errors.cc",
        "native/core/step_task.cc",
        "native/core/zlib_task.cc",
        "native/core/read_file_task.cc",
        "native/core/write_file_task.cc",
        "native/core/open_file.cc",
        "native/core/exec_task.cc",
        "native/core/child_reaper.cc",
        "native/binding/addon.cc",
        "native/binding/native_loop.cc",
        "native/binding/task_factory.cc",
        "native/binding/builtin_hash.cc",
        "native/binding/extension_task.cc",
        "native/binding/native_api.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        # While a worker thread is terminated, JS can no longer run: a Node-API
        # call made then fails, and node-addon-api would turn its failed throw
        # into a fatal error (SIGABRT). Swallowing it there is the only sane
        # answer; the environment is going away anyway.
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++1y", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [
        # npm run test:sanitize: AddressSanitizer and UndefinedBehaviorSanitizer
        ["'<!(node -p \"process.env.SIDELOOP_SANITIZE || ''\")'=='1'", {
          "cflags_cc": ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined", "-g", "-O1"],
          "ldflags": ["-fsanitize=address,undefined"]
        }]
      ],
      "xcode_settings": {
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "GCC_SYMBOLS_PRIVATE_EXTERN": "YES"
      }
    }
  ]
}
