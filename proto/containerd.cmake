# containerd's wire types (shim v2 API, events, runc options, cgroup metrics),
# included from proto/CMakeLists.txt. Paths are relative to proto/.
nanoshim_protoc(nanoshim_proto
  containerd/types/mount.proto
  containerd/types/metrics.proto
  containerd/types/task.proto
  containerd/types/introspection.proto
  containerd/task/v2/shim.proto
  containerd/runtime/bootstrap/v1/bootstrap.proto
  containerd/events/task.proto
  containerd/services/events/ttrpc/v1/events.proto
  containerd/runc/v1/oci.proto
  containerd/linux/runc/runc.proto
  runtimeoptions/v1/api.proto
  cgroups/v1/metrics.proto
  cgroups/v2/metrics.proto)
target_link_libraries(nanoshim_proto PUBLIC ttrpc_proto)
# the task events by type name, for nanoshimd's Forward and nanoctl's JSON
target_sources(nanoshim_proto PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/task_events.c)
target_include_directories(nanoshim_proto PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})

# nanoshimd's own API (manager/).
nanoshim_protoc(nanoshim_manager_proto nanoshim/v1/manager.proto)
target_link_libraries(nanoshim_manager_proto PUBLIC ttrpc_proto)

# the shim's live upgrade: its call and the state it hands over (shim/upgrade.h)
nanoshim_protoc(nanoshim_upgrade_proto nanoshim/shim/v1/upgrade.proto)
target_link_libraries(nanoshim_upgrade_proto PUBLIC ttrpc_proto)
