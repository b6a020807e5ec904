{
  "targets": [
    {
      "target_name": "reentrant",
      "sources": ["reentrant.c"],
      "include_dirs": ["../../../include"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
