# Debian's node-llhttp ships llhttp's C sources, not a library: compile them here
# into a static library target wr::llhttp.
find_path(LLHTTP_INCLUDE_DIR llhttp.h PATHS /usr/share/include/llhttp /usr/include/llhttp)
find_path(LLHTTP_SOURCE_DIR llhttp.c PATHS /usr/share/llhttp)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Llhttp REQUIRED_VARS LLHTTP_INCLUDE_DIR LLHTTP_SOURCE_DIR)
if(Llhttp_FOUND AND NOT TARGET wr::llhttp)
  add_library(wr_llhttp STATIC
    ${LLHTTP_SOURCE_DIR}/llhttp.c ${LLHTTP_SOURCE_DIR}/api.c ${LLHTTP_SOURCE_DIR}/http.c)
  target_include_directories(wr_llhttp SYSTEM PUBLIC ${LLHTTP_INCLUDE_DIR})
  # Generated code: do not hold it to our warning flags.
  target_compile_options(wr_llhttp PRIVATE -w)
  set_target_properties(wr_llhttp PROPERTIES POSITION_INDEPENDENT_CODE ON)
  add_library(wr::llhttp ALIAS wr_llhttp)
endif()
