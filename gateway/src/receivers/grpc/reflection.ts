// Server reflection for the gRPC port, built from the same .proto files as everything else.
//
// proto-loader (through protobufjs' descriptor extension) names a map field's implicit entry message
// after the field ("Attributes") instead of protoc's "<CamelCaseField>Entry" ("AttributesEntry"), and
// strict descriptor readers such as grpcurl's then refuse the file ("invalid map: incorrect implicit
// map entry name"). The descriptors are corrected here before they are served.
import type * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import descriptor from "protobufjs/ext/descriptor/index.js";

interface MessageDescriptor {
  name?: string;
  field?: Array<{ name?: string; typeName?: string; type?: unknown }>;
  nestedType?: MessageDescriptor[];
  options?: { mapEntry?: boolean } | null;
}

/** protoc's implicit map entry name: the field name in CamelCase plus "Entry". */
export function mapEntryName(fieldName: string): string {
  let out = "";
  let upper = true;
  for (const ch of fieldName) {
    if (ch === "_") {
      upper = true;
      continue;
    }
    out += upper ? ch.toUpperCase() : ch;
    upper = false;
  }
  return `${out}Entry`;
}

function fixMessage(message: MessageDescriptor, scope: string): void {
  const fullName = `${scope}.${message.name ?? ""}`;
  const entries = new Map<string, MessageDescriptor>();
  for (const nested of message.nestedType ?? []) if (nested.options?.mapEntry && nested.name) entries.set(nested.name, nested);
  for (const field of message.field ?? []) {
    const typeName = field.typeName ?? "";
    const short = typeName.startsWith(`${fullName}.`) ? typeName.slice(fullName.length + 1) : typeName;
    const entry = entries.get(short);
    if (entry && field.name) {
      entry.name = mapEntryName(field.name);
      field.typeName = `${fullName}.${entry.name}`;
    }
  }
  for (const nested of message.nestedType ?? []) fixMessage(nested, fullName);
}

function fixFileDescriptor(bytes: Buffer): Buffer {
  const file = descriptor.FileDescriptorProto.decode(bytes) as unknown as { package?: string; messageType?: MessageDescriptor[] };
  for (const message of file.messageType ?? []) fixMessage(message, file.package ? `.${file.package}` : "");
  return Buffer.from(descriptor.FileDescriptorProto.encode(file as never).finish());
}

export function addReflection(server: grpc.Server, protoFiles: string[]): void {
  const definitions = protoLoader.loadSync(protoFiles, { keepCase: true, longs: Number, enums: String, defaults: true });
  const fixed = new Map<Buffer, Buffer>();
  for (const def of Object.values(definitions)) {
    const withFiles = def as { fileDescriptorProtos?: Buffer[] };
    if (!withFiles.fileDescriptorProtos) continue;
    withFiles.fileDescriptorProtos = withFiles.fileDescriptorProtos.map((b) => {
      let f = fixed.get(b);
      if (!f) {
        f = fixFileDescriptor(b);
        fixed.set(b, f);
      }
      return f;
    });
  }
  new ReflectionService(definitions).addToServer(server);
}
