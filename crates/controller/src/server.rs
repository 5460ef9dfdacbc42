//! The controller's listeners: Pravega's Controller gRPC API (default port 9090) and its REST
//! admin API (default port 9091), both over one [`Controller`].

use std::net::SocketAddr;

use pravaha_controller_api::ControllerServiceServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::core::Controller;
use crate::grpc::GrpcService;

/// Pravega's default ports.
pub const DEFAULT_GRPC_PORT: u16 = 9090;
pub const DEFAULT_REST_PORT: u16 = 9091;

/// Where the controller listens.
#[derive(Debug, Clone)]
pub struct ListenConfig {
    pub grpc: SocketAddr,
    pub rest: SocketAddr,
}

/// A controller serving gRPC and REST.
pub struct ControllerServer {
    grpc_addr: SocketAddr,
    rest_addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl ControllerServer {
    /// Binds both listeners and serves `controller` on them.
    pub async fn start(controller: Controller, listen: &ListenConfig) -> std::io::Result<Self> {
        let grpc_listener = TcpListener::bind(listen.grpc).await?;
        let rest_listener = TcpListener::bind(listen.rest).await?;
        let grpc_addr = grpc_listener.local_addr()?;
        let rest_addr = rest_listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);

        let users = controller.config().users.clone();
        let service = ControllerServiceServer::with_interceptor(
            GrpcService::new(controller.clone(), grpc_addr),
            move |mut request: tonic::Request<()>| {
                if let Some(users) = &users {
                    let header = request
                        .metadata()
                        .get("authorization")
                        .and_then(|value| value.to_str().ok());
                    let user = users
                        .authenticate(header)
                        .map_err(|failure| tonic::Status::unauthenticated(failure.to_string()))?;
                    request.extensions_mut().insert(crate::auth::Caller(user));
                }
                Ok(request)
            },
        );
        let mut grpc_stopped = stopped.clone();
        let grpc = tokio::spawn(async move {
            let incoming =
                tonic::transport::server::TcpIncoming::from(grpc_listener).with_nodelay(Some(true));
            let result = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = grpc_stopped.changed().await;
                })
                .await;
            if let Err(error) = result {
                tracing::error!(%error, "the gRPC listener failed");
            }
        });

        let router = crate::rest::router(controller);
        let mut rest_stopped = stopped;
        let rest = tokio::spawn(async move {
            let result = axum::serve(rest_listener, router)
                .with_graceful_shutdown(async move {
                    let _ = rest_stopped.changed().await;
                })
                .await;
            if let Err(error) = result {
                tracing::error!(%error, "the REST listener failed");
            }
        });
        tracing::info!(address = %grpc_addr, "controller gRPC listening");
        tracing::info!(address = %rest_addr, "controller REST listening");
        Ok(Self {
            grpc_addr,
            rest_addr,
            stop,
            tasks: vec![grpc, rest],
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    pub fn rest_addr(&self) -> SocketAddr {
        self.rest_addr
    }

    /// Stops both listeners (in-flight requests finish).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
