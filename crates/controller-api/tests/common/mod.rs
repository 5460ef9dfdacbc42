//! The Controller API's rpcs, written from the interop reference (section 3.1) and the upstream
//! Java definition: one row per rpc, in one place, for every test binary.
//!
//! A row is `(rust_method, "protoRpcName", "ProtoRequest", "ProtoResponse", RustRequest,
//! RustResponse)`. The proto names are the contract; the Rust names are what prost and tonic
//! generate from them (prost turns `KVTables…` into `KvTables…`).

/// Calls `$callback! { row, row, … }` with every rpc of `ControllerService`.
#[macro_export]
macro_rules! with_controller_rpcs {
    ($callback:ident) => {
        $callback! {
            // Controller cluster.
            (get_controller_server_list, "getControllerServerList", "ServerRequest", "ServerResponse", ServerRequest, ServerResponse),
            (get_controller_to_bucket_mapping, "getControllerToBucketMapping", "ControllerToBucketMappingRequest", "ControllerToBucketMappingResponse", ControllerToBucketMappingRequest, ControllerToBucketMappingResponse),
            // Scopes.
            (create_scope, "createScope", "ScopeInfo", "CreateScopeStatus", ScopeInfo, CreateScopeStatus),
            (check_scope_exists, "checkScopeExists", "ScopeInfo", "ExistsResponse", ScopeInfo, ExistsResponse),
            (list_scopes, "listScopes", "ScopesRequest", "ScopesResponse", ScopesRequest, ScopesResponse),
            (delete_scope, "deleteScope", "ScopeInfo", "DeleteScopeStatus", ScopeInfo, DeleteScopeStatus),
            (delete_scope_recursive, "deleteScopeRecursive", "ScopeInfo", "DeleteScopeStatus", ScopeInfo, DeleteScopeStatus),
            // Streams.
            (create_stream, "createStream", "StreamConfig", "CreateStreamStatus", StreamConfig, CreateStreamStatus),
            (update_stream, "updateStream", "StreamConfig", "UpdateStreamStatus", StreamConfig, UpdateStreamStatus),
            (get_stream_configuration, "getStreamConfiguration", "StreamInfo", "StreamConfig", StreamInfo, StreamConfig),
            (check_stream_exists, "checkStreamExists", "StreamInfo", "ExistsResponse", StreamInfo, ExistsResponse),
            (list_streams_in_scope, "listStreamsInScope", "StreamsInScopeRequest", "StreamsInScopeResponse", StreamsInScopeRequest, StreamsInScopeResponse),
            (list_streams_in_scope_for_tag, "listStreamsInScopeForTag", "StreamsInScopeWithTagRequest", "StreamsInScopeResponse", StreamsInScopeWithTagRequest, StreamsInScopeResponse),
            (truncate_stream, "truncateStream", "StreamCut", "UpdateStreamStatus", StreamCut, UpdateStreamStatus),
            (seal_stream, "sealStream", "StreamInfo", "UpdateStreamStatus", StreamInfo, UpdateStreamStatus),
            (delete_stream, "deleteStream", "StreamInfo", "DeleteStreamStatus", StreamInfo, DeleteStreamStatus),
            (get_delegation_token, "getDelegationToken", "StreamInfo", "DelegationToken", StreamInfo, DelegationToken),
            // Segments.
            (get_current_segments, "getCurrentSegments", "StreamInfo", "SegmentRanges", StreamInfo, SegmentRanges),
            (get_epoch_segments, "getEpochSegments", "GetEpochSegmentsRequest", "SegmentRanges", GetEpochSegmentsRequest, SegmentRanges),
            (get_segments, "getSegments", "GetSegmentsRequest", "SegmentsAtTime", GetSegmentsRequest, SegmentsAtTime),
            (get_segments_immediatly_following, "getSegmentsImmediatlyFollowing", "SegmentId", "SuccessorResponse", SegmentId, SuccessorResponse),
            (get_segments_immediately_following, "getSegmentsImmediatelyFollowing", "SegmentId", "SuccessorResponse", SegmentId, SuccessorResponse),
            (get_segments_between, "getSegmentsBetween", "StreamCutRange", "StreamCutRangeResponse", StreamCutRange, StreamCutRangeResponse),
            (get_uri, "getURI", "SegmentId", "NodeUri", SegmentId, NodeUri),
            (is_segment_valid, "isSegmentValid", "SegmentId", "SegmentValidityResponse", SegmentId, SegmentValidityResponse),
            (is_stream_cut_valid, "isStreamCutValid", "StreamCut", "StreamCutValidityResponse", StreamCut, StreamCutValidityResponse),
            // Scaling.
            (scale, "scale", "ScaleRequest", "ScaleResponse", ScaleRequest, ScaleResponse),
            (check_scale, "checkScale", "ScaleStatusRequest", "ScaleStatusResponse", ScaleStatusRequest, ScaleStatusResponse),
            // Transactions.
            (create_transaction, "createTransaction", "CreateTxnRequest", "CreateTxnResponse", CreateTxnRequest, CreateTxnResponse),
            (ping_transaction, "pingTransaction", "PingTxnRequest", "PingTxnStatus", PingTxnRequest, PingTxnStatus),
            (commit_transaction, "commitTransaction", "TxnRequest", "TxnStatus", TxnRequest, TxnStatus),
            (abort_transaction, "abortTransaction", "TxnRequest", "TxnStatus", TxnRequest, TxnStatus),
            (check_transaction_state, "checkTransactionState", "TxnRequest", "TxnState", TxnRequest, TxnState),
            (list_completed_transactions, "listCompletedTransactions", "ListCompletedTxnRequest", "ListCompletedTxnResponse", ListCompletedTxnRequest, ListCompletedTxnResponse),
            // Writers and watermarks.
            (remove_writer, "removeWriter", "RemoveWriterRequest", "RemoveWriterResponse", RemoveWriterRequest, RemoveWriterResponse),
            (note_timestamp_from_writer, "noteTimestampFromWriter", "TimestampFromWriter", "TimestampResponse", TimestampFromWriter, TimestampResponse),
            // Key-value tables.
            (create_key_value_table, "createKeyValueTable", "KeyValueTableConfig", "CreateKeyValueTableStatus", KeyValueTableConfig, CreateKeyValueTableStatus),
            (get_key_value_table_configuration, "getKeyValueTableConfiguration", "KeyValueTableInfo", "KeyValueTableConfigResponse", KeyValueTableInfo, KeyValueTableConfigResponse),
            (get_current_segments_key_value_table, "getCurrentSegmentsKeyValueTable", "KeyValueTableInfo", "SegmentRanges", KeyValueTableInfo, SegmentRanges),
            (list_key_value_tables_in_scope, "listKeyValueTablesInScope", "KVTablesInScopeRequest", "KVTablesInScopeResponse", KvTablesInScopeRequest, KvTablesInScopeResponse),
            (delete_key_value_table, "deleteKeyValueTable", "KeyValueTableInfo", "DeleteKVTableStatus", KeyValueTableInfo, DeleteKvTableStatus),
            // Reader groups and subscribers.
            (create_reader_group, "createReaderGroup", "ReaderGroupConfiguration", "CreateReaderGroupResponse", ReaderGroupConfiguration, CreateReaderGroupResponse),
            (get_reader_group_config, "getReaderGroupConfig", "ReaderGroupInfo", "ReaderGroupConfigResponse", ReaderGroupInfo, ReaderGroupConfigResponse),
            (update_reader_group, "updateReaderGroup", "ReaderGroupConfiguration", "UpdateReaderGroupResponse", ReaderGroupConfiguration, UpdateReaderGroupResponse),
            (delete_reader_group, "deleteReaderGroup", "ReaderGroupInfo", "DeleteReaderGroupStatus", ReaderGroupInfo, DeleteReaderGroupStatus),
            (list_subscribers, "listSubscribers", "StreamInfo", "SubscribersResponse", StreamInfo, SubscribersResponse),
            (update_subscriber_stream_cut, "updateSubscriberStreamCut", "SubscriberStreamCut", "UpdateSubscriberStatus", SubscriberStreamCut, UpdateSubscriberStatus),
        }
    };
}

/// Builds `RPCS`: `(rpc name, request message, response message)` in proto spelling.
#[macro_export]
macro_rules! rpc_table {
    ($(($method:ident, $rpc:literal, $request:literal, $response:literal, $rust_request:ident, $rust_response:ident)),* $(,)?) => {
        /// Every rpc as `(name, request, response)`, proto spelling.
        pub const RPCS: &[(&str, &str, &str)] = &[$(($rpc, $request, $response)),*];
    };
}

with_controller_rpcs!(rpc_table);

/// How many rpcs Java master declares (the Rust client 0.3.7 knows 43 of them).
pub const RPC_COUNT: usize = 47;
