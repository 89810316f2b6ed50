# Finds every dependency from Debian 12 packages (see deps/).
find_package(PkgConfig REQUIRED)
pkg_check_modules(UV REQUIRED IMPORTED_TARGET libuv>=1.44)
pkg_check_modules(CARES REQUIRED IMPORTED_TARGET libcares>=1.16)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson>=2.13)
find_package(OpenSSL 3 REQUIRED)
find_package(Llhttp REQUIRED)
