{
  "targets": [
    {
      "target_name": "crc32",
      "sources": ["crc32.c"],
      # sideloop's public header; an extension published on npm would point
      # at require('sideloop')'s include/ folder instead.
      "include_dirs": ["../../include"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
