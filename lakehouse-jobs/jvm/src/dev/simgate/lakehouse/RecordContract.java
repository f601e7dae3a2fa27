package dev.simgate.lakehouse;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import java.io.IOException;
import java.io.Serializable;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.spark.sql.api.java.UDF1;

/**
 * The record contract (docs/records.md, "JSON types") checked inside the Spark JVM: each field's JSON
 * type, explicit zones on timestamps, undeclared fields, duplicate keys, non-finite numbers and integer
 * ranges, giving the same reasons in the same order as simgate.lakehouse.contract.schema_reasons, the
 * readable reference (tests/test_contract_jvm.py holds the two to each other).
 *
 * <p>The contract is not written here: the job hands over simgate.lakehouse.contract's declaration as
 * JSON (contract.contract_spec), so there is one definition of it. Running the check in the JVM spares
 * every record the trip to a Python worker and back, which made it the costliest part of a run's read.
 *
 * <p>Where the parse has to agree with Python's json module: NaN, Infinity and -Infinity are read (and
 * reported as non-finite numbers), other non-JSON tokens are not; an integer of more than 4300 digits
 * is unreadable (Python's int limit); nothing may follow the top-level value.
 */
public final class RecordContract implements UDF1<String, String[]> {
  private static final long serialVersionUID = 1L;
  private static final String[] NONE = new String[0];
  private static final int PYTHON_INT_MAX_DIGITS = 4300;

  // ISO-8601 date and time with an optional zone (contract.TIMESTAMP); \d as Python reads it (Unicode).
  private static final Pattern TIMESTAMP =
      Pattern.compile(
          "(\\d{4})-(\\d{2})-(\\d{2})[Tt](\\d{2}):(\\d{2}):(\\d{2})(?:\\.(\\d{1,9}))?(?<zone>[Zz]|[+-]\\d{2}:\\d{2})?",
          Pattern.UNICODE_CHARACTER_CLASS);
  private static final Pattern ZONELESS =
      Pattern.compile(
          "(\\d{4})-(\\d{2})-(\\d{2})[ Tt](\\d{2}):(\\d{2}):(\\d{2})(?:\\.\\d{1,9})?", Pattern.UNICODE_CHARACTER_CLASS);

  private final Kind contract;
  private final BigInteger[] accepted;
  private transient JsonFactory factory;

  /**
   * @param spec the contract as contract.contract_spec writes it: {"contract": kind, "accepted": [1]}, a
   *     kind being {"kind", "nullable", "fields": [[name, kind]...], "items": kind, "bounds": [lo, hi]}
   */
  public RecordContract(String spec) {
    try (JsonParser p = newFactory().createParser(spec)) {
      Object tree = read(p, p.nextToken());
      Obj root = (Obj) tree;
      this.contract = Kind.of((Obj) root.map.get("contract"));
      List<Object> versions = ((Arr) root.map.get("accepted")).items;
      this.accepted = new BigInteger[versions.size()];
      for (int i = 0; i < accepted.length; i++) {
        accepted[i] = ((Num) versions.get(i)).integer;
      }
    } catch (IOException | RuntimeException e) {
      throw new IllegalArgumentException("not a record contract: " + e.getMessage(), e);
    }
  }

  @Override
  public String[] call(String raw) {
    List<String> out = reasons(raw);
    return out.isEmpty() ? NONE : out.toArray(NONE);
  }

  /** The schema reasons of one record value; empty when it conforms. */
  public List<String> reasons(String raw) {
    List<String> out = new ArrayList<>(2);
    Object record;
    try {
      record = parse(raw);
    } catch (IOException | RuntimeException e) {
      // Unreadable as Python's json module reads it (Unparseable, Jackson's errors and limits): one reason,
      // never a failed task.
      out.add("unparseable_json");
      return out;
    }
    if (!(record instanceof Obj)) {
      out.add("unparseable_json");
      return out;
    }
    Object version = ((Obj) record).map.get("schemaVersion");
    if (version == null || version == Null.NULL) {
      out.add("unknown_schema_version");
      return out;
    }
    if (version instanceof Num && ((Num) version).integer != null && !isAccepted(((Num) version).integer)) {
      out.add("unknown_schema_version");
      return out;
    }
    check(record, contract, "", out);
    return out;
  }

  private boolean isAccepted(BigInteger version) {
    for (BigInteger v : accepted) {
      if (v.equals(version)) {
        return true;
      }
    }
    return false;
  }

  // ---- the walk: contract._check, case for case ----

  private static void check(Object value, Kind kind, String path, List<String> out) {
    if (value == Null.NULL) {
      if (!kind.nullable) {
        out.add("schema_mismatch:" + path + ":null");
      }
      return;
    }
    String found = jsonType(value);
    switch (kind.kind) {
      case "object":
      case "map":
        {
          if (value instanceof Obj && ((Obj) value).duplicates != null) {
            String prefix = path.isEmpty() ? "" : path + ".";
            for (String key : ((Obj) value).duplicates) {
              out.add("schema_mismatch:" + prefix + key + ":duplicate-key");
            }
            return;
          }
          if (!(value instanceof Obj)) {
            out.add("schema_mismatch:" + path + ":" + found);
            return;
          }
          Map<String, Object> map = ((Obj) value).map;
          String prefix = path.isEmpty() ? "" : path + ".";
          if (kind.kind.equals("map")) {
            for (Map.Entry<String, Object> e : map.entrySet()) {
              check(e.getValue(), kind.items, prefix + e.getKey(), out);
            }
            return;
          }
          for (Map.Entry<String, Kind> field : kind.fields.entrySet()) {
            Object item = map.get(field.getKey());
            if (item != null) {
              check(item, field.getValue(), prefix + field.getKey(), out);
            } else if (!field.getValue().nullable) {
              out.add("schema_mismatch:" + prefix + field.getKey() + ":absent");
            }
          }
          for (String name : map.keySet()) {
            if (!kind.fields.containsKey(name)) {
              out.add("schema_mismatch:" + prefix + name + ":undeclared");
            }
          }
          return;
        }
      case "array":
        {
          if (!(value instanceof Arr)) {
            out.add("schema_mismatch:" + path + ":" + found);
            return;
          }
          List<Object> items = ((Arr) value).items;
          for (int i = 0; i < items.size(); i++) {
            check(items.get(i), kind.items, path + "[" + i + "]", out);
          }
          return;
        }
      case "string":
      case "timestamp":
        {
          if (!(value instanceof String)) {
            out.add("schema_mismatch:" + path + ":" + found);
          } else if (kind.kind.equals("timestamp")) {
            String problem = timestampProblem((String) value);
            if (problem != null) {
              out.add("schema_mismatch:" + path + ":" + problem);
            }
          }
          return;
        }
      default: // integer, number
        {
          if (!(value instanceof Num)) {
            out.add("schema_mismatch:" + path + ":" + found);
            return;
          }
          Num n = (Num) value;
          if (n.integer == null && !Double.isFinite(n.real)) {
            out.add("schema_mismatch:" + path + ":non-finite-number");
          } else if (kind.kind.equals("integer")) {
            if (n.integer == null) {
              out.add("schema_mismatch:" + path + ":number");
            } else if (n.integer.compareTo(kind.low) < 0 || n.integer.compareTo(kind.high) > 0) {
              out.add("schema_mismatch:" + path + ":integer-out-of-range");
            }
          }
        }
    }
  }

  private static String jsonType(Object value) {
    if (value == Null.NULL) {
      return "null";
    }
    if (value instanceof Boolean) {
      return "boolean";
    }
    if (value instanceof Num) {
      return "number";
    }
    if (value instanceof String) {
      return "string";
    }
    if (value instanceof Arr) {
      return "array";
    }
    return "object";
  }

  static String timestampProblem(String text) {
    Matcher m = TIMESTAMP.matcher(text);
    if (!m.matches()) {
      Matcher z = ZONELESS.matcher(text);
      return z.matches() && validDateTime(z) ? "timestamp-without-zone" : "unparseable-timestamp";
    }
    if (!validDateTime(m)) {
      return "unparseable-timestamp";
    }
    String zone = m.group("zone");
    if (zone == null) {
      return "timestamp-without-zone";
    }
    if (!zone.equalsIgnoreCase("Z")
        && (Integer.parseInt(zone.substring(1, 3)) > 18 || Integer.parseInt(zone.substring(4, 6)) > 59)) {
      return "unparseable-timestamp";
    }
    return null;
  }

  /** Python's datetime(y, m, d, H, M, S) accepts it: years 1-9999, real days, no leap second. */
  private static boolean validDateTime(Matcher m) {
    int year = Integer.parseInt(m.group(1));
    int month = Integer.parseInt(m.group(2));
    int day = Integer.parseInt(m.group(3));
    int hour = Integer.parseInt(m.group(4));
    int minute = Integer.parseInt(m.group(5));
    int second = Integer.parseInt(m.group(6));
    if (year < 1 || month < 1 || month > 12 || hour > 23 || minute > 59 || second > 59) {
      return false;
    }
    boolean leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    int[] days = {31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return day >= 1 && day <= days[month - 1];
  }

  // ---- the parse: Python's json.JSONDecoder with the contract's hooks ----

  private JsonFactory factory() {
    if (factory == null) {
      factory = newFactory();
    }
    return factory;
  }

  private static JsonFactory newFactory() {
    return JsonFactory.builder()
        .enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS)
        .streamReadConstraints(
            StreamReadConstraints.builder()
                .maxNumberLength(Integer.MAX_VALUE)
                .maxStringLength(Integer.MAX_VALUE)
                .build())
        .build();
  }

  private Object parse(String raw) throws IOException {
    if (raw == null) {
      throw new Unparseable();
    }
    try (JsonParser p = factory().createParser(raw)) {
      JsonToken first = p.nextToken();
      if (first == null) {
        throw new Unparseable();
      }
      Object value = read(p, first);
      if (p.nextToken() != null) {
        throw new Unparseable(); // Python: "Extra data"
      }
      return value;
    }
  }

  private static JsonToken next(JsonParser p) throws IOException {
    JsonToken t = p.nextToken();
    if (t == null) {
      throw new Unparseable(); // the input ended inside a value
    }
    return t;
  }

  private static Object read(JsonParser p, JsonToken token) throws IOException {
    switch (token) {
      case START_OBJECT:
        {
          Obj obj = new Obj();
          for (JsonToken t = next(p); t != JsonToken.END_OBJECT; t = next(p)) {
            String key = p.currentName();
            Object value = read(p, next(p));
            if (obj.map.containsKey(key)) {
              if (obj.duplicates == null) {
                obj.duplicates = new ArrayList<>(1);
              }
              obj.duplicates.add(key);
              obj.map.put(key, value); // the last one wins, in the first one's place (a Python dict)
            } else {
              obj.map.put(key, value);
            }
          }
          return obj;
        }
      case START_ARRAY:
        {
          Arr arr = new Arr();
          for (JsonToken t = next(p); t != JsonToken.END_ARRAY; t = next(p)) {
            arr.items.add(read(p, t));
          }
          return arr;
        }
      case VALUE_STRING:
        return p.getText();
      case VALUE_NUMBER_INT:
        {
          String text = p.getText();
          int digits = text.startsWith("-") ? text.length() - 1 : text.length();
          if (digits > PYTHON_INT_MAX_DIGITS) {
            throw new Unparseable();
          }
          return new Num(new BigInteger(text), 0.0);
        }
      case VALUE_NUMBER_FLOAT:
        {
          if (p.isNaN()) {
            String text = p.getText();
            if (!text.equals("NaN") && !text.equals("Infinity") && !text.equals("-Infinity")) {
              throw new Unparseable(); // INF, +Infinity: Jackson reads them, Python does not
            }
            return new Num(null, Double.NaN);
          }
          return new Num(null, Double.parseDouble(p.getText()));
        }
      case VALUE_TRUE:
        return Boolean.TRUE;
      case VALUE_FALSE:
        return Boolean.FALSE;
      case VALUE_NULL:
        return Null.NULL;
      default:
        throw new Unparseable();
    }
  }

  private static final class Unparseable extends RuntimeException {
    private static final long serialVersionUID = 1L;

    Unparseable() {
      super(null, null, false, false);
    }
  }

  private enum Null {
    NULL
  }

  private static final class Obj {
    final LinkedHashMap<String, Object> map = new LinkedHashMap<>();
    List<String> duplicates; // each repeated occurrence of a key, in order; null when none
  }

  private static final class Arr {
    final List<Object> items = new ArrayList<>();
  }

  private static final class Num {
    final BigInteger integer; // an integer literal (no fraction, no exponent); null for the others
    final double real;

    Num(BigInteger integer, double real) {
      this.integer = integer;
      this.real = real;
    }
  }

  /** A declared JSON type (contract.Kind). */
  static final class Kind implements Serializable {
    private static final long serialVersionUID = 1L;
    final String kind;
    final boolean nullable;
    final LinkedHashMap<String, Kind> fields = new LinkedHashMap<>();
    final Kind items;
    final BigInteger low;
    final BigInteger high;

    private Kind(String kind, boolean nullable, Kind items, BigInteger low, BigInteger high) {
      this.kind = kind;
      this.nullable = nullable;
      this.items = items;
      this.low = low;
      this.high = high;
    }

    static Kind of(Obj spec) {
      Map<String, Object> m = spec.map;
      String kind = (String) m.get("kind");
      if (!List.of("string", "timestamp", "integer", "number", "object", "array", "map").contains(kind)) {
        throw new IllegalArgumentException("unknown kind " + kind);
      }
      Object items = m.get("items");
      List<Object> bounds = ((Arr) m.get("bounds")).items;
      Kind k =
          new Kind(
              kind,
              Boolean.TRUE.equals(m.get("nullable")),
              items instanceof Obj ? of((Obj) items) : null,
              ((Num) bounds.get(0)).integer,
              ((Num) bounds.get(1)).integer);
      if ((kind.equals("array") || kind.equals("map")) && k.items == null) {
        throw new IllegalArgumentException(kind + " without items");
      }
      for (Object field : ((Arr) m.get("fields")).items) {
        List<Object> pair = ((Arr) field).items;
        k.fields.put((String) pair.get(0), of((Obj) pair.get(1)));
      }
      return k;
    }
  }
}
