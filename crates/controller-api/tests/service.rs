//! The generated server and client over a real HTTP/2 connection on 127.0.0.1.
//!
//! A stub controller answers every rpc with `FAILED_PRECONDITION` and the rpc's proto name as the
//! message. A raw gRPC call to `/{SERVICE_NAME}/{rpc}` for each name of the reference table then
//! proves the server routes exactly those paths, and a call through each generated client method
//! proves the client uses them.

mod common;

use std::net::SocketAddr;

use common::{RPCS, RPC_COUNT};
use pravaha_controller_api::v1::*;
use pravaha_controller_api::{
    ControllerService, ControllerServiceClient, ControllerServiceServer, SERVICE_NAME,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::{Code, Request, Response, Status};
use tonic_prost::ProstCodec;

struct StubController;

macro_rules! stub_controller {
    ($(($method:ident, $rpc:literal, $request:literal, $response:literal, $rust_request:ident, $rust_response:ident)),* $(,)?) => {
        #[tonic::async_trait]
        impl ControllerService for StubController {
            $(
                async fn $method(
                    &self,
                    _request: Request<$rust_request>,
                ) -> Result<Response<$rust_response>, Status> {
                    Err(Status::failed_precondition($rpc))
                }
            )*
        }
    };
}

with_controller_rpcs!(stub_controller);

/// Calls every generated client method and collects `(expected rpc, status)` pairs.
macro_rules! call_every_client_method {
    ($(($method:ident, $rpc:literal, $request:literal, $response:literal, $rust_request:ident, $rust_response:ident)),* $(,)?) => {
        async fn call_every_client_method(
            client: &mut ControllerServiceClient<Channel>,
        ) -> Vec<(&'static str, Status)> {
            let mut answers = Vec::new();
            $(
                let outcome = client.$method(Request::new($rust_request::default())).await;
                let status = outcome.expect_err(concat!($rpc, " must reach the stub"));
                answers.push(($rpc, status));
            )*
            answers
        }
    };
}

with_controller_rpcs!(call_every_client_method);

struct RunningServer {
    address: SocketAddr,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl RunningServer {
    fn start() -> Self {
        let incoming = TcpIncoming::bind("127.0.0.1:0".parse().expect("literal address"))
            .expect("bind an ephemeral port");
        let address = incoming.local_addr().expect("bound address");
        let (shutdown, shutdown_signal) = oneshot::channel::<()>();
        let server = Server::builder()
            .add_service(ControllerServiceServer::new(StubController))
            .serve_with_incoming_shutdown(incoming, async {
                let _ = shutdown_signal.await;
            });
        Self {
            address,
            shutdown,
            task: tokio::spawn(server),
        }
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.address))
            .expect("valid uri")
            .connect()
            .await
            .expect("connect to the stub controller")
    }

    async fn stop(self) {
        self.shutdown.send(()).expect("server still running");
        self.task
            .await
            .expect("server task joins")
            .expect("server ends cleanly");
    }
}

/// Sends an empty message (every proto3 message decodes from zero bytes) to `path`.
async fn raw_call(channel: &Channel, path: &str) -> Status {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("channel ready");
    let path = PathAndQuery::try_from(path.to_string()).expect("valid path");
    let codec = ProstCodec::<(), ()>::default();
    grpc.unary(Request::new(()), path, codec)
        .await
        .expect_err("the stub always fails")
}

#[tokio::test]
async fn server_routes_every_reference_path_to_its_rpc() {
    assert_eq!(RPCS.len(), RPC_COUNT);
    let server = RunningServer::start();
    let channel = server.channel().await;
    for (rpc, _, _) in RPCS {
        let status = raw_call(&channel, &format!("/{SERVICE_NAME}/{rpc}")).await;
        assert_eq!(status.code(), Code::FailedPrecondition, "{rpc}: {status:?}");
        assert_eq!(status.message(), *rpc, "path of {rpc} reached another rpc");
    }
    server.stop().await;
}

#[tokio::test]
async fn server_rejects_paths_outside_the_api() {
    let server = RunningServer::start();
    let channel = server.channel().await;
    let wrong_paths = [
        format!("/{SERVICE_NAME}/getUri"), // rpc names are case-sensitive
        format!("/{SERVICE_NAME}/get_uri"),
        "/io.pravega.controller.stream.api.grpc.v1.Controller/getURI".to_string(),
        "/ControllerService/getURI".to_string(),
    ];
    for path in wrong_paths {
        let status = raw_call(&channel, &path).await;
        assert_eq!(status.code(), Code::Unimplemented, "{path}: {status:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn client_method_calls_the_rpc_of_the_same_name() {
    let server = RunningServer::start();
    let mut client = ControllerServiceClient::new(server.channel().await);
    let answers = call_every_client_method(&mut client).await;
    assert_eq!(answers.len(), RPC_COUNT);
    for (rpc, status) in answers {
        assert_eq!(status.code(), Code::FailedPrecondition, "{rpc}: {status:?}");
        assert_eq!(
            status.message(),
            rpc,
            "client method for {rpc} called another rpc"
        );
    }
    server.stop().await;
}
