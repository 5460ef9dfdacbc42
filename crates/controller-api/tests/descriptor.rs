//! Checks the compiled API (the embedded descriptor set) against tables written from the interop
//! reference, section 3, and the upstream Java definition: every rpc with its request and
//! response, every message field with its number and type, every enum value.

mod common;

use std::collections::BTreeSet;

use common::{RPCS, RPC_COUNT};
use pravaha_controller_api::{FILE_DESCRIPTOR_SET, SERVICE_NAME};
use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorProto, FileDescriptorSet};

const PACKAGE: &str = "io.pravega.controller.stream.api.grpc.v1";

/// One line per message: `Name: number name type; …`, fields by number. Nested types are named
/// `Outer.Inner`; `*` marks a repeated field, `!` a deprecated one.
const MESSAGES: &str = "
BucketIds: 1 id *int32
ContinuationToken: 1 token string
ControllerToBucketMappingRequest: 1 serviceType ControllerToBucketMappingRequest.BucketType
ControllerToBucketMappingResponse: 1 mapping map<string,BucketIds>
CreateKeyValueTableStatus: 1 status CreateKeyValueTableStatus.Status
CreateReaderGroupResponse: 1 status CreateReaderGroupResponse.Status; 2 config ReaderGroupConfiguration
CreateScopeStatus: 1 status CreateScopeStatus.Status
CreateStreamStatus: 1 status CreateStreamStatus.Status
CreateTxnRequest: 1 streamInfo StreamInfo; 2 lease int64; 3 scaleGracePeriod int64!
CreateTxnResponse: 1 txnId TxnId; 2 activeSegments *SegmentRange; 3 delegationToken string
DelegationToken: 1 delegationToken string
DeleteKVTableStatus: 1 status DeleteKVTableStatus.Status
DeleteReaderGroupStatus: 1 status DeleteReaderGroupStatus.Status
DeleteScopeStatus: 1 status DeleteScopeStatus.Status
DeleteStreamStatus: 1 status DeleteStreamStatus.Status
ExistsResponse: 1 exists bool
GetEpochSegmentsRequest: 1 streamInfo StreamInfo; 2 epoch int32
GetSegmentsRequest: 1 streamInfo StreamInfo; 2 timestamp int64
KVTablesInScopeRequest: 1 scope ScopeInfo; 2 continuationToken ContinuationToken
KVTablesInScopeResponse: 1 kvtables *KeyValueTableInfo; 2 continuationToken ContinuationToken; 3 status KVTablesInScopeResponse.Status
KeyValueTableConfig: 1 scope string; 2 kvtName string; 3 partitionCount int32; 4 primaryKeyLength int32; 5 secondaryKeyLength int32; 6 rolloverSizeBytes int64
KeyValueTableConfigResponse: 1 config KeyValueTableConfig; 2 status KeyValueTableConfigResponse.Status
KeyValueTableInfo: 1 scope string; 2 kvtName string
ListCompletedTxnRequest: 1 streamInfo StreamInfo
ListCompletedTxnResponse: 2 response *TxnResponse
NodeUri: 1 endpoint string; 2 port int32
PingTxnRequest: 1 streamInfo StreamInfo; 2 txnId TxnId; 3 lease int64
PingTxnStatus: 1 status PingTxnStatus.Status
ReaderGroupConfigResponse: 1 config ReaderGroupConfiguration; 2 status ReaderGroupConfigResponse.Status
ReaderGroupConfiguration: 1 scope string; 2 readerGroupName string; 3 groupRefreshTimeMillis int64; 4 automaticCheckpointIntervalMillis int64; 5 maxOutstandingCheckpointRequest int32; 6 retentionType int32; 7 generation int64; 8 readerGroupId string; 9 startingStreamCuts *StreamCut; 10 endingStreamCuts *StreamCut; 11 rolloverSizeBytes int64
ReaderGroupInfo: 1 scope string; 2 readerGroup string; 3 readerGroupId string; 4 generation int64
RemoveWriterRequest: 1 writer string; 2 stream StreamInfo
RemoveWriterResponse: 1 result RemoveWriterResponse.Status
RetentionPolicy: 1 retentionType RetentionPolicy.RetentionPolicyType; 2 retentionParam int64; 3 retentionMax int64
ScaleRequest: 1 streamInfo StreamInfo; 2 sealedSegments *int64; 3 newKeyRanges *ScaleRequest.KeyRangeEntry; 4 scaleTimestamp int64
ScaleRequest.KeyRangeEntry: 1 start double; 2 end double
ScaleResponse: 1 status ScaleResponse.ScaleStreamStatus; 2 segments *SegmentRange; 3 epoch int32
ScaleStatusRequest: 1 streamInfo StreamInfo; 2 epoch int32
ScaleStatusResponse: 1 status ScaleStatusResponse.ScaleStatus
ScalingPolicy: 1 scaleType ScalingPolicy.ScalingPolicyType; 2 targetRate int32; 3 scaleFactor int32; 4 minNumSegments int32
ScopeInfo: 1 scope string
ScopesRequest: 1 continuationToken ContinuationToken
ScopesResponse: 1 scopes *string; 2 continuationToken ContinuationToken
SegmentId: 1 streamInfo StreamInfo; 2 segmentId int64
SegmentRange: 1 segmentId SegmentId; 2 minKey double; 3 maxKey double
SegmentRanges: 1 segmentRanges *SegmentRange; 2 delegationToken string
SegmentValidityResponse: 1 response bool
SegmentsAtTime: 1 segments *SegmentsAtTime.SegmentLocation; 2 delegationToken string
SegmentsAtTime.SegmentLocation: 1 segmentId SegmentId; 2 offset int64
ServerRequest:
ServerResponse: 1 nodeURI *NodeUri
StreamConfig: 1 streamInfo StreamInfo; 2 scalingPolicy ScalingPolicy; 3 retentionPolicy RetentionPolicy; 4 tags Tags; 5 timestampAggregationTimeout int64; 6 rolloverSizeBytes int64
StreamCut: 1 streamInfo StreamInfo; 2 cut map<int64,int64>
StreamCutRange: 1 streamInfo StreamInfo; 2 from map<int64,int64>; 3 to map<int64,int64>
StreamCutRangeResponse: 1 segments *SegmentId; 2 delegationToken string
StreamCutValidityResponse: 1 response bool
StreamInfo: 1 scope string; 2 stream string; 3 accessOperation StreamInfo.AccessOperation
StreamSubscriberInfo: 1 scope string; 2 stream string; 3 subscriber string; 4 operationGeneration int64
StreamsInScopeRequest: 1 scope ScopeInfo; 2 continuationToken ContinuationToken
StreamsInScopeResponse: 1 streams *StreamInfo; 2 continuationToken ContinuationToken; 3 status StreamsInScopeResponse.Status
StreamsInScopeWithTagRequest: 1 scope ScopeInfo; 2 tag string; 3 continuationToken ContinuationToken
SubscriberStreamCut: 1 subscriber string; 2 generation int64; 3 readerGroupId string; 4 streamCut StreamCut
SubscribersResponse: 1 subscribers *string; 2 status SubscribersResponse.Status
SuccessorResponse: 1 segments *SuccessorResponse.SegmentEntry; 2 delegationToken string
SuccessorResponse.SegmentEntry: 1 segment SegmentRange; 2 value *int64
Tags: 1 tag *string
TimestampFromWriter: 1 writer string; 2 position StreamCut; 3 timestamp int64
TimestampResponse: 1 result TimestampResponse.Status
TxnId: 1 highBits int64; 2 lowBits int64
TxnRequest: 1 streamInfo StreamInfo; 2 txnId TxnId; 3 writerId string; 4 timestamp int64
TxnResponse: 1 txnId TxnId; 2 status TxnResponse.Status
TxnState: 1 state TxnState.State
TxnStatus: 1 status TxnStatus.Status
UpdateReaderGroupResponse: 1 status UpdateReaderGroupResponse.Status; 2 generation int64
UpdateStreamStatus: 1 status UpdateStreamStatus.Status
UpdateSubscriberStatus: 1 status UpdateSubscriberStatus.Status
";

/// One line per enum: `Name: VALUE=number …`; `!` marks a deprecated value.
const ENUMS: &str = "
ControllerToBucketMappingRequest.BucketType: RetentionService=0 WatermarkingService=1
CreateKeyValueTableStatus.Status: SUCCESS=0 FAILURE=1 TABLE_EXISTS=2 SCOPE_NOT_FOUND=3 INVALID_TABLE_NAME=4
CreateReaderGroupResponse.Status: SUCCESS=0 FAILURE=1 SCOPE_NOT_FOUND=2 INVALID_RG_NAME=3
CreateScopeStatus.Status: SUCCESS=0 FAILURE=1 SCOPE_EXISTS=2 INVALID_SCOPE_NAME=3
CreateStreamStatus.Status: SUCCESS=0 FAILURE=1 STREAM_EXISTS=2 SCOPE_NOT_FOUND=3 INVALID_STREAM_NAME=4
DeleteKVTableStatus.Status: SUCCESS=0 FAILURE=1 TABLE_NOT_FOUND=2
DeleteReaderGroupStatus.Status: SUCCESS=0 FAILURE=1 RG_NOT_FOUND=2
DeleteScopeStatus.Status: SUCCESS=0 FAILURE=1 SCOPE_NOT_FOUND=2 SCOPE_NOT_EMPTY=3
DeleteStreamStatus.Status: SUCCESS=0 FAILURE=1 STREAM_NOT_FOUND=2 STREAM_NOT_SEALED=3
KVTablesInScopeResponse.Status: SUCCESS=0 FAILURE=1 SCOPE_NOT_FOUND=2
KeyValueTableConfigResponse.Status: SUCCESS=0 FAILURE=1 TABLE_NOT_FOUND=2
PingTxnStatus.Status: OK=0 LEASE_TOO_LARGE=1 MAX_EXECUTION_TIME_EXCEEDED=2 SCALE_GRACE_TIME_EXCEEDED=3! DISCONNECTED=4 COMMITTED=5 ABORTED=6 UNKNOWN=7
ReaderGroupConfigResponse.Status: SUCCESS=0 FAILURE=1 RG_NOT_FOUND=2
ReaderGroupConfiguration.RetentionType: NONE=0 MANUAL=1 AUTOMATIC=2
RemoveWriterResponse.Status: SUCCESS=0 UNKNOWN_WRITER=1 STREAM_DOES_NOT_EXIST=2 INTERNAL_ERROR=3
RetentionPolicy.RetentionPolicyType: UNKNOWN=0 TIME=1 SIZE=2
ScaleResponse.ScaleStreamStatus: STARTED=0 FAILURE=1 PRECONDITION_FAILED=2
ScaleStatusResponse.ScaleStatus: IN_PROGRESS=0 SUCCESS=1 INVALID_INPUT=2 INTERNAL_ERROR=3
ScalingPolicy.ScalingPolicyType: FIXED_NUM_SEGMENTS=0 BY_RATE_IN_KBYTES_PER_SEC=1 BY_RATE_IN_EVENTS_PER_SEC=2
StreamInfo.AccessOperation: UNSPECIFIED=0 NONE=1 ANY=2 READ=3 WRITE=4 READ_WRITE=5
StreamsInScopeResponse.Status: SUCCESS=0 FAILURE=1 SCOPE_NOT_FOUND=2
SubscribersResponse.Status: SUCCESS=0 FAILURE=1 STREAM_NOT_FOUND=2
TimestampResponse.Status: SUCCESS=0 INVALID_TIME=1 INVALID_POSITION=2 INTERNAL_ERROR=3
TxnResponse.Status: COMMITTED=0 ABORTED=1
TxnState.State: UNKNOWN=0 OPEN=1 COMMITTING=2 COMMITTED=3 ABORTING=4 ABORTED=5
TxnStatus.Status: SUCCESS=0 FAILURE=1 STREAM_NOT_FOUND=2 TRANSACTION_NOT_FOUND=3
UpdateReaderGroupResponse.Status: SUCCESS=0 FAILURE=1 RG_NOT_FOUND=2 INVALID_CONFIG=3
UpdateStreamStatus.Status: SUCCESS=0 FAILURE=1 STREAM_NOT_FOUND=2 SCOPE_NOT_FOUND=3 STREAM_SEALED=4
UpdateSubscriberStatus.Status: SUCCESS=0 FAILURE=1 STREAM_NOT_FOUND=2 SUBSCRIBER_NOT_FOUND=3 STREAM_CUT_NOT_VALID=4 GENERATION_MISMATCH=5
";

#[test]
fn file_is_proto3_in_the_pravega_package() {
    let file = controller_file();
    assert_eq!(file.syntax(), "proto3");
    assert_eq!(file.package(), PACKAGE);
    assert!(file.dependency.is_empty(), "imports: {:?}", file.dependency);
    assert_eq!(file.service.len(), 1);
    let service_name = format!("{PACKAGE}.{}", file.service[0].name());
    assert_eq!(service_name, SERVICE_NAME);
}

#[test]
fn service_has_every_rpc_with_its_request_and_response() {
    assert_eq!(RPCS.len(), RPC_COUNT);
    let file = controller_file();
    let methods = &file.service[0].method;
    let mut compiled = BTreeSet::new();
    for method in methods {
        assert!(
            !method.client_streaming(),
            "{} streams requests",
            method.name()
        );
        assert!(
            !method.server_streaming(),
            "{} streams responses",
            method.name()
        );
        let request = short_type_name(method.input_type());
        let response = short_type_name(method.output_type());
        compiled.insert(format!("{}({request}) -> {response}", method.name()));
    }
    let expected: BTreeSet<String> = RPCS
        .iter()
        .map(|(rpc, request, response)| format!("{rpc}({request}) -> {response}"))
        .collect();
    assert_sets_equal("rpc", &expected, &compiled);
    assert_eq!(methods.len(), RPC_COUNT, "an rpc is declared twice");
}

#[test]
fn every_message_has_the_reference_fields() {
    let file = controller_file();
    let mut compiled = BTreeSet::new();
    for message in &file.message_type {
        describe_message("", message, &mut compiled);
    }
    assert_sets_equal("message", &table_lines(MESSAGES), &compiled);
}

#[test]
fn every_enum_has_the_reference_values() {
    let file = controller_file();
    let mut compiled = BTreeSet::new();
    assert!(
        file.enum_type.is_empty(),
        "top-level enums are not expected"
    );
    for message in &file.message_type {
        describe_enums("", message, &mut compiled);
    }
    assert_sets_equal("enum", &table_lines(ENUMS), &compiled);
}

fn controller_file() -> FileDescriptorProto {
    let set = FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("embedded set decodes");
    assert_eq!(set.file.len(), 1, "Controller.proto imports nothing");
    set.file.into_iter().next().expect("one file")
}

/// `.io.pravega.controller.stream.api.grpc.v1.StreamInfo.AccessOperation` → `StreamInfo.AccessOperation`.
fn short_type_name(full_name: &str) -> &str {
    let prefix_length = PACKAGE.len() + 2;
    assert!(full_name.starts_with('.') && full_name[1..].starts_with(PACKAGE));
    &full_name[prefix_length..]
}

fn describe_message(outer: &str, message: &DescriptorProto, lines: &mut BTreeSet<String>) {
    let name = format!("{outer}{}", message.name());
    if message
        .options
        .as_ref()
        .is_some_and(|options| options.map_entry())
    {
        return; // described by the map field that owns it
    }
    assert!(message.oneof_decl.is_empty(), "{name} has a oneof");
    let mut fields: Vec<_> = message.field.iter().collect();
    fields.sort_by_key(|field| field.number());
    let described: Vec<String> = fields
        .iter()
        .map(|field| {
            let deprecated = field
                .options
                .as_ref()
                .is_some_and(|options| options.deprecated());
            let mark = if deprecated { "!" } else { "" };
            let type_text = field_type_text(message, field);
            format!("{} {} {type_text}{mark}", field.number(), field.name())
        })
        .collect();
    lines.insert(
        format!("{name}: {}", described.join("; "))
            .trim_end()
            .to_string(),
    );
    for nested in &message.nested_type {
        describe_message(&format!("{name}."), nested, lines);
    }
}

fn field_type_text(message: &DescriptorProto, field: &prost_types::FieldDescriptorProto) -> String {
    let scalar = match field.r#type() {
        Type::Message | Type::Enum => None,
        Type::String => Some("string"),
        Type::Int32 => Some("int32"),
        Type::Int64 => Some("int64"),
        Type::Double => Some("double"),
        Type::Bool => Some("bool"),
        other => panic!("unexpected field type {other:?} in {}", message.name()),
    };
    let element = scalar.map_or_else(
        || short_type_name(field.type_name()).to_string(),
        String::from,
    );
    if field.label() != Label::Repeated {
        return element;
    }
    let map_entry = message.nested_type.iter().find(|nested| {
        let is_map = nested
            .options
            .as_ref()
            .is_some_and(|options| options.map_entry());
        is_map && element.ends_with(&format!(".{}", nested.name()))
    });
    match map_entry {
        Some(entry) => {
            let key = field_type_text(entry, &entry.field[0]);
            let value = field_type_text(entry, &entry.field[1]);
            format!("map<{key},{value}>")
        }
        None => format!("*{element}"),
    }
}

fn describe_enums(outer: &str, message: &DescriptorProto, lines: &mut BTreeSet<String>) {
    let name = format!("{outer}{}", message.name());
    for enumeration in &message.enum_type {
        lines.insert(describe_enum(&name, enumeration));
    }
    for nested in &message.nested_type {
        describe_enums(&format!("{name}."), nested, lines);
    }
}

fn describe_enum(outer: &str, enumeration: &EnumDescriptorProto) -> String {
    let values: Vec<String> = enumeration
        .value
        .iter()
        .map(|value| {
            let deprecated = value
                .options
                .as_ref()
                .is_some_and(|options| options.deprecated());
            let mark = if deprecated { "!" } else { "" };
            format!("{}={}{mark}", value.name(), value.number())
        })
        .collect();
    format!("{outer}.{}: {}", enumeration.name(), values.join(" "))
}

fn table_lines(table: &str) -> BTreeSet<String> {
    table
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(String::from)
        .collect()
}

fn assert_sets_equal(what: &str, expected: &BTreeSet<String>, compiled: &BTreeSet<String>) {
    let missing: Vec<_> = expected.difference(compiled).collect();
    let unexpected: Vec<_> = compiled.difference(expected).collect();
    assert!(
        missing.is_empty() && unexpected.is_empty(),
        "{what} mismatch\n  expected but not compiled: {missing:#?}\n  compiled but not expected: {unexpected:#?}"
    );
}
