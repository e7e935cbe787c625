// A Go client of vllm-grpc-gateway: streams a chat answer, cancels a stream half way, sets a
// deadline, and reads the google.rpc.ErrorInfo of an error. Build it with ./build.sh (Debian's
// Go packages, GOPATH mode, offline).
//
//	chat-client ADDRESS [stream|cancel|deadline|not-found] [MODEL]
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	errdetails "google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	vllm "vllmgateway/v1"
)

func chatRequest(model string, maxTokens int32, tokensPerSecond float64) *vllm.ChatCompletionRequest {
	request := &vllm.ChatCompletionRequest{
		Model:     model,
		MaxTokens: proto.Int32(maxTokens),
		Messages: []*vllm.ChatMessage{
			{Role: "user", Content: &vllm.ChatMessage_Text{Text: "Tell me about HTTP/2"}},
		},
	}
	if tokensPerSecond > 0 {
		// extra_body goes into vLLM's JSON as it is; "vllm_sim" paces the simulator's tokens.
		extra, err := structpb.NewStruct(map[string]interface{}{
			"vllm_sim": map[string]interface{}{"tokens_per_second": tokensPerSecond},
		})
		if err != nil {
			panic(err)
		}
		request.ExtraBody = extra
	}
	return request
}

// printChunk prints a chunk's text, and the usage that the last chunk carries.
func printChunk(chunk *vllm.ChatCompletionChunk) {
	for _, choice := range chunk.GetChoices() {
		fmt.Print(choice.GetDelta().GetContent())
	}
	if usage := chunk.GetUsage(); usage != nil {
		fmt.Printf("\n[usage: %d prompt + %d completion tokens]\n", usage.GetPromptTokens(), usage.GetCompletionTokens())
	}
}

// streamChat streams a whole answer.
func streamChat(client vllm.VLLMServiceClient, model string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stream, err := client.StreamChatCompletion(ctx, chatRequest(model, 32, 0))
	if err != nil {
		return err
	}
	for {
		chunk, err := stream.Recv()
		if err == io.EOF {
			fmt.Println("status: OK")
			return nil
		}
		if err != nil {
			return err
		}
		printChunk(chunk)
	}
}

// cancelHalfWay asks for 100 tokens at 20 a second, reads 10 chunks, then cancels the call:
// the gateway aborts the generation in vLLM.
func cancelHalfWay(client vllm.VLLMServiceClient, model string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := client.StreamChatCompletion(ctx, chatRequest(model, 100, 20))
	if err != nil {
		return err
	}
	for received := 0; received < 10; received++ {
		chunk, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("the stream ended before it was cancelled: %w", err)
		}
		printChunk(chunk)
	}
	cancel()
	fmt.Println("\ncancelled after 10 chunks")
	for {
		if _, err := stream.Recv(); err != nil {
			fmt.Printf("status: %s\n", codeName(status.Code(err)))
			if status.Code(err) != codes.Canceled {
				return err
			}
			return nil
		}
	}
}

// deadline gives a slow stream 200 ms: it ends DEADLINE_EXCEEDED.
func deadline(client vllm.VLLMServiceClient, model string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	stream, err := client.StreamChatCompletion(ctx, chatRequest(model, 100, 20))
	for err == nil {
		var chunk *vllm.ChatCompletionChunk
		if chunk, err = stream.Recv(); err == nil {
			printChunk(chunk)
		}
	}
	fmt.Printf("\nstatus: %s\n", codeName(status.Code(err)))
	if status.Code(err) != codes.DeadlineExceeded {
		return fmt.Errorf("expected DEADLINE_EXCEEDED: %w", err)
	}
	return nil
}

// notFound asks for a model nobody serves and prints the google.rpc.ErrorInfo that the gateway
// sends in grpc-status-details-bin.
func notFound(client vllm.VLLMServiceClient) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := client.StreamChatCompletion(ctx, chatRequest("no-such-model", 8, 0))
	for err == nil {
		_, err = stream.Recv()
	}
	if err == io.EOF {
		return errors.New("the stream succeeded: expected NOT_FOUND")
	}
	st := status.Convert(err)
	fmt.Printf("status: %s\nmessage: %s\n", codeName(st.Code()), st.Message())
	found := false
	for _, detail := range st.Details() {
		if info, ok := detail.(*errdetails.ErrorInfo); ok {
			found = true
			fmt.Printf("error_info: reason=%s domain=%s\n", info.GetReason(), info.GetDomain())
			keys := make([]string, 0, len(info.GetMetadata()))
			for key := range info.GetMetadata() {
				keys = append(keys, key)
			}
			sort.Strings(keys)
			for _, key := range keys {
				fmt.Printf("metadata: %s=%s\n", key, info.GetMetadata()[key])
			}
		}
	}
	if st.Code() != codes.NotFound {
		return fmt.Errorf("expected NOT_FOUND: %w", err)
	}
	if !found {
		return errors.New("no google.rpc.ErrorInfo in grpc-status-details-bin")
	}
	return nil
}

// codeName spells a code as the gRPC spec does (DEADLINE_EXCEEDED rather than DeadlineExceeded).
func codeName(code codes.Code) string {
	names := map[codes.Code]string{
		codes.OK: "OK", codes.Canceled: "CANCELLED", codes.Unknown: "UNKNOWN",
		codes.InvalidArgument: "INVALID_ARGUMENT", codes.DeadlineExceeded: "DEADLINE_EXCEEDED",
		codes.NotFound: "NOT_FOUND", codes.PermissionDenied: "PERMISSION_DENIED",
		codes.ResourceExhausted: "RESOURCE_EXHAUSTED", codes.Unimplemented: "UNIMPLEMENTED",
		codes.Internal: "INTERNAL", codes.Unavailable: "UNAVAILABLE", codes.Unauthenticated: "UNAUTHENTICATED",
	}
	if name, ok := names[code]; ok {
		return name
	}
	return code.String()
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: chat-client ADDRESS [stream|cancel|deadline|not-found] [MODEL]")
		os.Exit(2)
	}
	address, mode, model := os.Args[1], "stream", "sim-model"
	if len(os.Args) > 2 {
		mode = os.Args[2]
	}
	if len(os.Args) > 3 {
		model = os.Args[3]
	}
	connection, err := grpc.Dial(address, grpc.WithInsecure())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer connection.Close()
	client := vllm.NewVLLMServiceClient(connection)
	switch mode {
	case "stream":
		err = streamChat(client, model)
	case "cancel":
		err = cancelHalfWay(client, model)
	case "deadline":
		err = deadline(client, model)
	case "not-found":
		err = notFound(client)
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}
