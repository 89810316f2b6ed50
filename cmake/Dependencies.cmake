# Finds every dependency from Debian 12 packages (see deps/).
find_package(PkgConfig REQUIRED)
pkg_check_modules(UV REQUIRED IMPORTED_TARGET libuv>=1.44)
pkg_check_modules(CARES REQUIRED IMPORTED_TARGET libcares>=1.16)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson>=2.13)
find_package(OpenSSL 3 REQUIRED)
find_package(Llhttp REQUIRED)

# WR_STATIC: the release artefact. Every library from its Debian .a archive,
# the executable linked with -static: no shared objects at run time, so it
# runs in a FROM scratch image. (Debian ships libuv's archive as libuv_a.a.)
if(WR_STATIC)
  foreach(pair "UV;libuv_a.a;libuv.a" "CARES;libcares.a" "JANSSON;libjansson.a"
               "SSL;libssl.a" "CRYPTO;libcrypto.a")
    list(GET pair 0 var)
    list(SUBLIST pair 1 -1 names)
    find_library(WR_${var}_STATIC NAMES ${names} REQUIRED)
  endforeach()
  set(WR_DEP_LIBS ${WR_UV_STATIC} ${WR_CARES_STATIC} ${WR_JANSSON_STATIC} ${WR_SSL_STATIC}
      ${WR_CRYPTO_STATIC} pthread dl m)
else()
  set(WR_DEP_LIBS PkgConfig::UV PkgConfig::CARES PkgConfig::JANSSON OpenSSL::SSL OpenSSL::Crypto m)
endif()
