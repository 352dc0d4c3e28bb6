"""saedict.v1: the wire API's generated messages (saedict_pb2) and gRPC stubs
(saedict_pb2_grpc), made from proto/saedict/v1/saedict.proto when the
package is built (setup.py runs protoc with grpc_python_plugin)."""
