# Build rules for the ttrpc interop peers, shared by test/interop (the interop
# tests) and bench/ (the ttrpc benchmark); whichever directory comes first
# defines them.
if(TARGET cpeer)
  return()
endif()

add_executable(cpeer ${CMAKE_CURRENT_LIST_DIR}/cpeer.c)
target_link_libraries(cpeer PRIVATE ttrpc ttrpc_bench_proto)
set_target_properties(cpeer PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/test/interop)

# gopeer: containerd/ttrpc 1.1.1 as Debian packages it (what containerd 1.6 and
# its shims are built with), compiled offline in GOPATH mode.
option(NANOSHIM_GOPEER "Build the Go ttrpc peer for interop tests and benchmarks" ON)
set(NANOSHIM_GOCODE /usr/share/gocode CACHE PATH "GOPATH holding github.com/containerd/ttrpc")
find_program(GO_EXECUTABLE go)
set(gopeer_dir ${CMAKE_BINARY_DIR}/test/interop/gopeer-build)
if(NANOSHIM_GOPEER AND GO_EXECUTABLE AND EXISTS ${NANOSHIM_GOCODE}/src/github.com/containerd/ttrpc)
  file(GLOB gopeer_srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/gopeer/*.go)
  add_custom_command(
    OUTPUT ${gopeer_dir}/gopeer
    COMMAND ${CMAKE_COMMAND} -E env GO=${GO_EXECUTABLE} NANOSHIM_GOCODE=${NANOSHIM_GOCODE}
            ${CMAKE_CURRENT_LIST_DIR}/build-gopeer.sh ${gopeer_dir}
    DEPENDS ${gopeer_srcs} ${CMAKE_CURRENT_LIST_DIR}/build-gopeer.sh
    COMMENT "go build gopeer (offline, GOPATH mode, containerd/ttrpc 1.1.1)"
    VERBATIM)
  add_custom_target(gopeer ALL DEPENDS ${gopeer_dir}/gopeer)
  set(NANOSHIM_GOPEER_BIN ${gopeer_dir}/gopeer CACHE INTERNAL "")
else()
  message(STATUS "gopeer: go or golang-github-containerd-ttrpc-dev missing, Go interop peer not built")
  set(NANOSHIM_GOPEER_BIN "" CACHE INTERNAL "")
endif()
